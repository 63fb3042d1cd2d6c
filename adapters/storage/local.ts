/** Storage port on a local directory (CLI runs, tests without S3). */
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdir, readFile, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StorageKeyNotFoundError, type Storage } from "../../pipeline/ports.ts";

export function createLocalStorage(rootDir: string): Storage {
  const root = path.resolve(rootDir);
  const where = `local directory ${root}`;
  const file = (key: string): string => {
    const p = path.resolve(root, key);
    if (!p.startsWith(root + path.sep)) throw new Error(`storage key escapes the storage root: ${key}`);
    return p;
  };
  const missing = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === "ENOENT";
  /** write to a temporary name then rename: readers never see half a file */
  const atomically = async (key: string, write: (tmp: string) => Promise<void>): Promise<void> => {
    const dest = file(key);
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.${Date.now()}.partial`;
    try {
      await write(tmp);
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  };
  const walk = async (dir: string): Promise<string[]> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (missing(err)) return [];
      throw err;
    }
    const out: string[] = [];
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) out.push(...(await walk(p)));
      else if (!e.name.endsWith(".partial")) out.push(path.relative(root, p).split(path.sep).join("/"));
    }
    return out;
  };

  const size = async (key: string): Promise<number | undefined> => {
    try {
      const s = await stat(file(key));
      return s.isFile() ? s.size : undefined;
    } catch (err) {
      if (missing(err)) return undefined;
      throw err;
    }
  };

  // no `this` below: adapters may spread this object into a larger one
  return {
    describe: where,
    async put(key, body) {
      await atomically(key, async (tmp) => {
        if (Buffer.isBuffer(body)) await pipeline(Readable.from([body]), createWriteStream(tmp));
        else await pipeline(body, createWriteStream(tmp));
      });
    },
    async putFile(key, src) {
      await atomically(key, (tmp) => copyFile(src, tmp));
    },
    async get(key) {
      try {
        return await readFile(file(key));
      } catch (err) {
        if (missing(err)) throw new StorageKeyNotFoundError(key, where);
        throw err;
      }
    },
    async getToFile(key, dest) {
      try {
        await mkdir(path.dirname(dest), { recursive: true });
        await copyFile(file(key), dest);
      } catch (err) {
        if (missing(err)) throw new StorageKeyNotFoundError(key, where);
        throw err;
      }
    },
    async exists(key) {
      return (await size(key)) !== undefined;
    },
    size,
    async stream(key, range) {
      if ((await size(key)) === undefined) throw new StorageKeyNotFoundError(key, where);
      return createReadStream(file(key), range ? { start: range.start, end: range.end } : {});
    },
    async deletePrefix(prefix) {
      const keys = (await walk(root)).filter((k) => k.startsWith(prefix));
      await Promise.all(keys.map((k) => rm(file(k), { force: true })));
      return keys.length;
    },
    async list(prefix) {
      return (await walk(root)).filter((k) => k.startsWith(prefix)).sort();
    },
  };
}

/**
 * Hostile inputs to the decoder, with the real ffmpeg: an HLS playlist, an ffconcat file and
 * an .m3u8-named file that point at a local file outside the scratch directory are refused
 * before ffmpeg starts (their first bytes are no audio format), and ffmpeg itself is only
 * ever asked to read a local file with its demuxer pinned (a stand-in ffmpeg records every
 * call). A lying length is cut at the limit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createFfmpegAudioTools, decodeArgs, NotAudioError } from "../../adapters/audio/ffmpeg.ts";
import { wavHeader } from "../../pipeline/audio/wav.ts";

async function withDirs<T>(f: (dirs: { scratch: string; outside: string; calls: string; spy: string }) => Promise<T>): Promise<T> {
  const root = await mkdtemp(path.join(os.tmpdir(), "ts-hostile-"));
  const scratch = path.join(root, "scratch");
  const outside = path.join(root, "secret");
  await mkdir(scratch);
  await mkdir(outside);
  const calls = path.join(root, "ffmpeg-calls.txt");
  const spy = path.join(root, "ffmpeg-spy.sh");
  // records its arguments, then runs the real ffmpeg with them
  await writeFile(spy, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\nexec ffmpeg "$@"\n`);
  await chmod(spy, 0o755);
  try {
    return await f({ scratch, outside, calls, spy });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function tone(seconds: number, rate = 22050): Buffer {
  const n = Math.round(seconds * rate);
  const b = Buffer.alloc(44 + n * 2);
  wavHeader(n * 2, rate).copy(b, 0);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(4000 * Math.sin((2 * Math.PI * 330 * i) / rate)), 44 + i * 2);
  return b;
}

test("an HLS playlist, an ffconcat file and an .m3u8-named playlist are refused without ffmpeg reading anything", async () => {
  await withDirs(async ({ scratch, outside, calls, spy }) => {
    const secret = path.join(outside, "secret.wav");
    await writeFile(secret, tone(2));
    const hostile: [string, string][] = [
      ["source.m3u8", `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\nfile://${secret}\n#EXTINF:2.0,\n${secret}\n#EXT-X-ENDLIST\n`],
      ["source.ffconcat", `ffconcat version 1.0\nfile '${secret}'\n`],
      ["source.wav", `#EXTM3U\n#EXTINF:2.0,\n${secret}\n`],
      ["source.bin", `file '${secret}'\n`],
    ];
    const tools = createFfmpegAudioTools({ ffmpeg: spy });
    for (const [name, body] of hostile) {
      const input = path.join(scratch, name);
      await writeFile(input, body);
      await assert.rejects(tools.decodeToWav(input, path.join(scratch, "out.wav")), (err: unknown) => err instanceof NotAudioError && /not a recognized audio format/.test(err.message), name);
      assert.equal(existsSync(path.join(scratch, "out.wav")), false, `${name}: nothing decoded`);
    }
    assert.equal(existsSync(calls), false, "ffmpeg was never started for a playlist");
  });
});

test("ffmpeg is asked to read local files only, with the sniffed demuxer; real audio still decodes", async () => {
  await withDirs(async ({ scratch, calls, spy }) => {
    const input = path.join(scratch, "source.m3u8"); // a client's name: the content decides
    await writeFile(input, tone(1.5));
    const tools = createFfmpegAudioTools({ ffmpeg: spy });
    const { duration } = await tools.decodeToWav(input, path.join(scratch, "out.wav"));
    assert.ok(Math.abs(duration - 1.5) < 0.01, `duration ${duration}`);
    const args = (await readFile(calls, "utf8")).trim();
    assert.match(args, /-protocol_whitelist file -f wav -i /);
    assert.deepEqual(decodeArgs("in", "out", "webm").slice(5, 9), ["-protocol_whitelist", "file", "-f", "matroska"]);
  });
});

test("a file whose header claims hours is cut one second past the decoder's limit (-t): enough to tell it is too long, never more", async () => {
  await withDirs(async ({ scratch }) => {
    const input = path.join(scratch, "source.bin");
    await writeFile(input, tone(5));
    const tools = createFfmpegAudioTools({ maxSeconds: 1 });
    const { duration } = await tools.decodeToWav(input, path.join(scratch, "out.wav"));
    assert.ok(duration <= 2.001 && duration > 1.9, `duration ${duration}`);
    // the canonical 16 kHz fast path (no ffmpeg) is cut the same way
    const canonical = path.join(scratch, "canonical.wav");
    const n = 16000 * 5;
    const b = Buffer.alloc(44 + n * 2);
    wavHeader(n * 2, 16000).copy(b, 0);
    await writeFile(canonical, b);
    const fast = await tools.decodeToWav(canonical, path.join(scratch, "out2.wav"));
    assert.equal(fast.duration, 2);
  });
});

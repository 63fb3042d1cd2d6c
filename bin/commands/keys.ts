/**
 * `trackscribe keys create --name NAME | list | revoke NAME`: the API keys that users send as
 * `Authorization: Bearer <key>`. A key sees and manages only the recordings it created. The
 * key is printed once, by `create`; the database keeps only its SHA-256.
 */
import type { Command } from "commander";
import { loadConfig, type Config } from "../../pipeline/config.ts";
import { CliError } from "../errors.ts";

async function withKeys<T>(f: (keys: import("../../server/auth/keys.ts").ApiKeys) => Promise<T>): Promise<T> {
  const config: Config = loadConfig(process.env);
  if (!config.DATABASE_URL) throw new CliError("set DATABASE_URL (npm run services:start prints it)");
  const { migrate } = await import("../../adapters/postgres/migrate.ts");
  const { createPool } = await import("../../adapters/postgres/pool.ts");
  const { createApiKeys } = await import("../../server/auth/keys.ts");
  try {
    if (config.MIGRATE_ON_START) await migrate(config);
  } catch (err) {
    throw new CliError(`could not prepare the database: ${(err as Error).message}`, 1);
  }
  const pool = createPool(config, { max: 2 });
  try {
    return await f(createApiKeys(pool));
  } finally {
    await pool.end();
  }
}

const iso = (d: Date | null): string => (d ? d.toISOString().replace(/\.\d+Z$/, "Z") : "-");

export function register(program: Command): void {
  const keys = program.command("keys").description("API keys: each sees only the recordings it created (the operator's API_TOKEN sees all)");

  keys
    .command("create")
    .description("create a key and print it once (only its hash is stored)")
    .requiredOption("--name <name>", "a name for the key (letters, digits, '.', '_', '-'; unique among live keys)")
    .option("--json", "print {name, prefix, key, created_at} as JSON")
    .action(async (opts: { name: string; json?: boolean }) => {
      const { KeyNameError } = await import("../../server/auth/keys.ts");
      const created = await withKeys(async (k) => {
        try {
          return await k.create(opts.name);
        } catch (err) {
          if (err instanceof KeyNameError) throw new CliError(err.message);
          throw err;
        }
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ name: created.name, prefix: created.prefix, key: created.key, created_at: created.created_at.toISOString() })}\n`);
      } else {
        process.stdout.write(`${created.key}\n`);
        process.stderr.write(`key '${created.name}' (prefix ${created.prefix}) created. It is shown this once: store it now; send it as 'Authorization: Bearer <key>'.\n`);
      }
    });

  keys
    .command("list")
    .description("list keys: name, prefix, created, last used, revoked (never the keys)")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      const rows = await withKeys((k) => k.list());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(rows.map((r) => ({ name: r.name, prefix: r.prefix, created_at: r.created_at, last_used_at: r.last_used_at, revoked_at: r.revoked_at })))}\n`);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write("no keys (create one with: trackscribe keys create --name NAME)\n");
        return;
      }
      const table = [["NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED"], ...rows.map((r) => [r.name, r.prefix, iso(r.created_at), iso(r.last_used_at), iso(r.revoked_at)])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()}\n`);
    });

  keys
    .command("revoke")
    .description("revoke the live key with this name: it is refused (401) from the next request on")
    .argument("<name>", "the key's name")
    .action(async (name: string) => {
      const revoked = await withKeys((k) => k.revoke(name));
      if (!revoked) throw new CliError(`no live key named '${name.slice(0, 80)}' (see: trackscribe keys list)`, 1);
      process.stdout.write(`revoked key '${revoked.name}' (prefix ${revoked.prefix})\n`);
    });
}

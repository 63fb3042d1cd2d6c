/**
 * API keys with owners, in Postgres (table api_keys). A key is `tsk_` + 43 base64url
 * characters (32 random bytes); it is shown once when created and only its SHA-256 is
 * stored. The first 12 characters (`tsk_` + 8) are its public prefix: they find the row
 * and name the key in listings without revealing it.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type pg from "pg";
import { pgCode, PgCode } from "../../adapters/postgres/pool.ts";

export const KEY_PREFIX = "tsk_";
const PREFIX_LENGTH = KEY_PREFIX.length + 8;
/** what a key looks like; anything else is not looked up */
export const KEY_PATTERN = /^tsk_[A-Za-z0-9_-]{43}$/;
export const KEY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** last_used_at is written at most this often per key (a request does not cost a write) */
const TOUCH_EVERY_SECONDS = 60;

export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface CreatedKey extends ApiKeyRow {
  /** the key itself: shown once, never stored */
  key: string;
}

export class KeyNameError extends Error {
  override readonly name = "KeyNameError";
}

export const hashKey = (key: string): string => createHash("sha256").update(key).digest("hex");

export function createApiKeys(pool: pg.Pool) {
  return {
    /** A new key named `name` (letters, digits, . _ -; unique among live keys). */
    async create(name: string): Promise<CreatedKey> {
      if (!KEY_NAME_PATTERN.test(name)) throw new KeyNameError(`key name '${name.slice(0, 80)}' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
      for (let attempt = 0; ; attempt++) {
        const key = KEY_PREFIX + randomBytes(32).toString("base64url");
        try {
          const { rows } = await pool.query<ApiKeyRow>(
            `INSERT INTO api_keys (id, name, prefix, key_hash) VALUES ($1, $2, $3, $4)
             RETURNING id, name, prefix, created_at, last_used_at, revoked_at`,
            [randomUUID(), name, key.slice(0, PREFIX_LENGTH), hashKey(key)],
          );
          return { ...rows[0]!, key };
        } catch (err) {
          if (pgCode(err) !== PgCode.uniqueViolation) throw err;
          const taken = await pool.query(`SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at IS NULL`, [name]);
          if (taken.rowCount) throw new KeyNameError(`a live key is already named '${name}' (revoke it first, or pick another name)`);
          if (attempt >= 3) throw err; // a prefix collision, again and again: something is wrong
        }
      }
    },

    async list(): Promise<ApiKeyRow[]> {
      const { rows } = await pool.query<ApiKeyRow>(
        `SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at, id`,
      );
      return rows;
    },

    /** Revoke the live key named `name`; resolves with the revoked row, or undefined if none. */
    async revoke(name: string): Promise<ApiKeyRow | undefined> {
      const { rows } = await pool.query<ApiKeyRow>(
        `UPDATE api_keys SET revoked_at = clock_timestamp() WHERE name = $1 AND revoked_at IS NULL
         RETURNING id, name, prefix, created_at, last_used_at, revoked_at`,
        [name],
      );
      return rows[0];
    },

    /** The live key this bearer token is, or undefined. Constant-time on the hash. */
    async verify(token: string): Promise<{ id: string; name: string } | undefined> {
      if (!KEY_PATTERN.test(token)) return undefined;
      const { rows } = await pool.query<{ id: string; name: string; key_hash: string }>(
        `SELECT id, name, key_hash FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL`,
        [token.slice(0, PREFIX_LENGTH)],
      );
      const row = rows[0];
      if (!row) return undefined;
      if (!timingSafeEqual(Buffer.from(hashKey(token), "hex"), Buffer.from(row.key_hash, "hex"))) return undefined;
      return { id: row.id, name: row.name };
    },

    /** Record a use (at most once a minute per key). */
    async touch(id: string): Promise<void> {
      await pool.query(
        `UPDATE api_keys SET last_used_at = clock_timestamp()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < clock_timestamp() - make_interval(secs => $2))`,
        [id, TOUCH_EVERY_SECONDS],
      );
    },

    async liveCount(): Promise<number> {
      const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL`);
      return Number(rows[0]!.n);
    },
  };
}

export type ApiKeys = ReturnType<typeof createApiKeys>;

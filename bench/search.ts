/**
 * `npm run bench:search`: GET /v1/search's query against 1 000 completed recordings.
 * Seeds a fresh schema (every migration applied) with 1 000 recordings of two owners, each
 * a Result of ~60 turns (~1 500 words) drawn from a 5 000-word vocabulary, indexed by the
 * same code finalize uses (adapters/postgres/search.ts), then times the search as a key
 * (its 500 recordings) and as the operator (all 1 000): a rare word, a common word, a
 * phrase, a title word and an `or`. Prints p50/p99 per query against the 50 ms budget and
 * exits 1 when a p99 is over it. DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { migrate } from "../adapters/postgres/migrate.ts";
import { createPool } from "../adapters/postgres/pool.ts";
import { createSearchRepo, indexResult } from "../adapters/postgres/search.ts";
import type { Result, Word } from "../pipeline/contracts/index.ts";

const RECORDINGS = Number(process.env.BENCH_RECORDINGS ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const BUDGET_MS = 50;

// a vocabulary with a Zipf-like use: a few words everywhere, most rare
let seed = 42;
const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const syllables = ["ka", "lo", "mi", "ter", "san", "do", "ve", "rit", "pa", "nu", "gor", "li", "ben", "sha", "tu", "mor"];
const vocab = Array.from({ length: 5000 }, (_, i) => {
  let w = "";
  for (let n = i + 1, k = 0; k < 2 || n > 0; k++, n = Math.floor(n / 16)) w += syllables[n % 16];
  return w;
});
const pick = (): string => vocab[Math.min(vocab.length - 1, Math.floor(vocab.length * rand() ** 3))]!;

function result(n: number): Result {
  const words: Word[] = [];
  let t = 0;
  for (let turn = 0; turn < 60; turn++) {
    const speaker = turn % 3;
    for (let i = 0; i < 25; i++) {
      words.push({ text: pick(), start: t, end: t + 0.3, speaker });
      t += 0.35;
    }
    t += 2.5; // a pause: the next turn
  }
  return {
    duration: t,
    participants: [0, 1, 2].map((s) => ({ speaker: s, name: `Person ${s}` })),
    words,
    topics: [],
    title: `Meeting ${n} about ${pick()} and ${pick()}`,
    short_summary: Array.from({ length: 20 }, pick).join(" "),
    long_summary: Array.from({ length: 60 }, pick).join(" "),
    action_items: [],
  };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function main(): Promise<void> {
  const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const schema = `bench_search_${randomBytes(3).toString("hex")}`;
  await migrate({ DATABASE_URL, DATABASE_SCHEMA: schema });
  const pool = createPool({ DATABASE_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_MAX: 4 });
  try {
    await pool.query(`INSERT INTO api_keys (id, name, prefix, key_hash) VALUES ('k1', 'one', 'tsk_11111111', $1), ('k2', 'two', 'tsk_22222222', $1)`, ["0".repeat(64)]);
    const t0 = performance.now();
    for (let n = 0; n < RECORDINGS; n++) {
      const id = randomUUID();
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await client.query(`INSERT INTO recordings (id, status, language, source, owner_key_id, created_at) VALUES ($1, 'completed', 'en', 'upload', $2, now() - make_interval(mins => $3))`, [
          id,
          n % 2 ? "k1" : "k2",
          RECORDINGS - n,
        ]);
        await indexResult(client, id, result(n));
        await client.query("COMMIT");
      } finally {
        client.release();
      }
    }
    await pool.query("ANALYZE");
    const segs = Number((await pool.query(`SELECT count(*) FROM transcript_segments`)).rows[0].count);
    process.stdout.write(`seeded ${RECORDINGS} recordings, ${segs} turns in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

    const search = createSearchRepo(pool);
    const queries: [string, string][] = [
      ["rare word", vocab[4000]!],
      ["common word", vocab[0]!],
      ["phrase", `"${vocab[0]} ${vocab[1]}"`],
      ["title word", "meeting"],
      ["or", `${vocab[3000]} or ${vocab[2000]}`],
    ];
    let over = false;
    process.stdout.write(`${"query".padEnd(14)}${"as".padEnd(10)}${"hits".padStart(6)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}  budget ${BUDGET_MS} ms\n`);
    for (const [label, q] of queries) {
      for (const [as, owner] of [["key", "k1"], ["operator", undefined]] as const) {
        const times: number[] = [];
        let hits = 0;
        for (let i = 0; i < RUNS; i++) {
          const s = performance.now();
          const page = await search.search(q, { limit: 20, ...(owner ? { owner } : {}) });
          times.push(performance.now() - s);
          hits = page.items.length;
        }
        const p50 = pct(times, 50);
        const p99 = pct(times, 99);
        if (p99 > BUDGET_MS) over = true;
        process.stdout.write(`${label.padEnd(14)}${as.padEnd(10)}${String(hits).padStart(6)}${p50.toFixed(2).padStart(9)}${p99.toFixed(2).padStart(9)}  ${p99 <= BUDGET_MS ? "ok" : "OVER"}\n`);
      }
    }
    if (over) process.exitCode = 1;
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await pool.end();
  }
}

await main();

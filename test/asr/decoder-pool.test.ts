/**
 * The shared decoder pool: segments of concurrent calls share a bounded set of long-lived
 * decoders, and every way a decoder can go wrong (crash, hang, abort, missing binary) fails
 * only the call it was working for, while the pool carries on with a fresh decoder.
 * Driven by a protocol-compatible stand-in (fake-decoder.mjs) so failures happen on cue;
 * the real pocketsphinx decoder runs through the same pool in pocketsphinx.test.ts.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DecoderError, DecoderPool, type DecoderPoolOptions } from "../../adapters/asr/decoder-pool.ts";
import { parseCtm } from "../../adapters/asr/pocketsphinx.ts";

const FAKE = path.join(path.dirname(fileURLToPath(import.meta.url)), "fake-decoder.mjs");
let tmpRoot: string;
before(async () => {
  tmpRoot = await mkdtemp(path.join(os.tmpdir(), "ts-pool-"));
});
after(() => rm(tmpRoot, { recursive: true, force: true }));

const pool = (o: Partial<DecoderPoolOptions> = {}): DecoderPool =>
  new DecoderPool({ binary: process.execPath, args: [FAKE], size: 2, tmpRoot, parseCtm, ...o });
const seg = (text: string, seconds = 1): { pcm: Buffer; seconds: number } => ({ pcm: Buffer.from(text, "latin1"), seconds });
const pidOf = (words: { text: string }[][]): string[] => words.flatMap((ws) => ws.filter((w) => w.text.startsWith("pid")).map((w) => w.text));

test("concurrent calls share at most `size` decoders and each gets its own segments back in order", async () => {
  const p = pool();
  try {
    const calls = [0, 1, 2].map((c) => p.decode([seg("a".repeat(10 + c)), seg("b".repeat(20 + c), 3), seg("c".repeat(30 + c), 2)]));
    assert.ok(p.running <= 2);
    const results = await Promise.all(calls);
    results.forEach((words, c) => {
      assert.deepEqual(
        words.map((ws) => ws[0]!.text),
        [`w${10 + c}`, `w${20 + c}`, `w${30 + c}`],
      );
      assert.equal(words[0]![0]!.start, 0.1);
      assert.equal(words[0]![0]!.confidence, 0.9);
    });
    const pids = new Set(results.flatMap(pidOf));
    assert.ok(pids.size >= 1 && pids.size <= 2, `9 segments on ${pids.size} decoders`);
    // a later call reuses the loaded decoders
    const again = await p.decode([seg("zz")]);
    assert.ok(pids.has(pidOf(again)[0]!), "the warm decoder took the next call");
  } finally {
    await p.close();
  }
});

test("progress starts at 0 and reaches 1, weighted by segment seconds", async () => {
  const p = pool({ size: 1 });
  try {
    const seen: number[] = [];
    await p.decode([seg("x", 1), seg("y", 3)], { onProgress: (f) => seen.push(f) });
    assert.equal(seen[0], 0);
    assert.equal(seen[seen.length - 1], 1);
    assert.deepEqual([...seen].sort((a, b) => a - b), seen);
    assert.ok(seen.includes(0.75), `longest first: after the 3 s segment 3/4 is done (${seen.join(", ")})`);
  } finally {
    await p.close();
  }
});

test("a decoder that crashes fails only the call it was working for, with its log tail; the pool recovers", async () => {
  const p = pool();
  try {
    const bad = p.decode([seg("CRASH now"), seg("never decoded", 5)]);
    const good = p.decode([seg("fine"), seg("also fine")]);
    await assert.rejects(bad, (e: unknown) => e instanceof DecoderError && e.retryable && /exited with 3/.test(e.message) && /told to crash/.test(e.message));
    const words = await good;
    assert.deepEqual(words.map((ws) => ws[0]!.text), ["w4", "w9"]);
    assert.deepEqual((await p.decode([seg("after")]))[0]![0]!.text, "w5");
  } finally {
    await p.close();
  }
});

test("a decoder that hangs is declared stuck and replaced", async () => {
  const p = pool({ size: 1, minStallMs: 400, stallFactor: 0.1 });
  try {
    await assert.rejects(p.decode([seg("HANG")]), (e: unknown) => e instanceof DecoderError && /took longer than/.test(e.message));
    // a long segment (limit 0.1 × 50 s): a fresh decoder's start on a busy machine can take 400 ms
    assert.deepEqual((await p.decode([seg("ok", 50)]))[0]![0]!.text, "w2");
  } finally {
    await p.close();
  }
});

/** A clock that moves only when told to: the pool's timers fire on `advance`. */
function manualClock() {
  let t = 0;
  let n = 0;
  const timers = new Map<number, { fn: () => void; at: number }>();
  return {
    now: () => t,
    setTimeout: (fn: () => void, ms: number) => (timers.set(++n, { fn, at: t + ms }), n),
    clearTimeout: (h: unknown) => void timers.delete(h as number),
    setKeepAlive: () => {},
    advance(ms: number) {
      t += ms;
      for (const [id, x] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (x.at > t || !timers.has(id)) continue;
        timers.delete(id);
        x.fn();
      }
    },
  };
}

test("with an injected clock the stall limit is measured on that clock, not on wall time", async () => {
  const clock = manualClock();
  const p = pool({ size: 1, minStallMs: 60_000, clock });
  try {
    let settled = false;
    const hung = p.decode([seg("HANG")]).finally(() => (settled = true));
    hung.catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    clock.advance(59_999);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false, "not stuck yet by the pool's clock");
    clock.advance(1);
    await assert.rejects(hung, (e: unknown) => e instanceof DecoderError && /took longer than 60 s on a 1\.0 s segment/.test(e.message));
    assert.deepEqual((await p.decode([seg("ok")]))[0]![0]!.text, "w2", "a fresh decoder took the next call");
  } finally {
    await p.close();
  }
});

test("aborting a call drops its queued segments and stops its decoder; other work is unaffected", async () => {
  const p = pool({ size: 1 });
  try {
    const ac = new AbortController();
    const seen: number[] = [];
    const doomed = p.decode([seg("HANG", 9), seg("queued", 1)], { signal: ac.signal, onProgress: (f) => seen.push(f) });
    setTimeout(() => ac.abort(new Error("user cancelled")), 300);
    await assert.rejects(doomed, /user cancelled/);
    assert.ok(!seen.includes(1), "the queued segment never ran");
    assert.deepEqual((await p.decode([seg("next")]))[0]![0]!.text, "w4");
  } finally {
    await p.close();
  }
});

test("a decoder binary that cannot start is a non-retryable error", async () => {
  const p = pool({ binary: "/nonexistent/decoder", args: [] });
  try {
    await assert.rejects(p.decode([seg("x"), seg("y")]), (e: unknown) => e instanceof DecoderError && !e.retryable && /could not start/.test(e.message));
  } finally {
    await p.close();
  }
});

test("idle decoders exit on their own; close removes the pool's directory; stale directories of dead processes are swept", async () => {
  const stale = path.join(tmpRoot, "trackscribe-asr-2147483646-abc");
  mkdirSync(stale, { recursive: true });
  const p = pool({ idleMs: 200 });
  await p.decode([seg("one"), seg("two")]);
  assert.ok(!existsSync(stale), "a directory left by a process that is gone was removed");
  const mine = readdirSync(tmpRoot).filter((n) => n.startsWith(`trackscribe-asr-${process.pid}-`));
  assert.equal(mine.length, 1);
  const deadline = Date.now() + 5000;
  while (p.running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(p.running, 0, "idle decoders exited");
  await p.close();
  assert.ok(!existsSync(path.join(tmpRoot, mine[0]!)));
  await assert.rejects(p.decode([seg("late")]), /closed/);
});

for (const idleMs of [0, Infinity]) test(`with no idle limit (idleMs ${idleMs}), warmed decoders stay loaded and serve later calls without a new start`, async () => {
  const p = pool({ idleMs });
  try {
    p.warm();
    assert.equal(p.running, 2);
    const first = pidOf(await p.decode([seg("pid"), seg("pid")])).sort();
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(p.running, 2, "still loaded after being idle");
    const later = pidOf(await p.decode([seg("pid"), seg("pid")])).sort();
    assert.equal(first.length, 2);
    assert.ok(later.every((x) => first.includes(x)), `${later} were started after ${first}`);
  } finally {
    await p.close();
  }
  assert.equal(p.running, 0);
});

test("a batch's calls are gathered and ordered together: the later call's longer segment goes first", async () => {
  const order: string[] = [];
  const run = async (gather: boolean): Promise<string[]> => {
    order.length = 0;
    const p = pool({ size: 1, gatherMs: 2000 });
    try {
      p.warm();
      const batch = gather ? { batch: { id: "rec-1", size: 2 } } : {};
      const first = p.decode([seg("SLOW-short", 1)], batch).then(() => order.push("short"));
      await new Promise((r) => setTimeout(r, 150)); // the second track is picked up later
      const second = p.decode([seg("SLOW-long", 5)], batch).then(() => order.push("long"));
      await Promise.all([first, second]);
      return [...order];
    } finally {
      await p.close();
    }
  };
  assert.deepEqual(await run(false), ["short", "long"], "without a batch the first call starts at once");
  assert.deepEqual(await run(true), ["long", "short"], "with a batch the longest segment of the meeting starts first");
});

test("a batch whose other calls never come is dispatched after gatherMs; other work never waits for it", async () => {
  const p = pool({ size: 1, gatherMs: 1500 });
  try {
    const t0 = performance.now();
    const lonely = p.decode([seg("abc")], { batch: { id: "rec-2", size: 3 } });
    const other = await p.decode([seg("xyz")]);
    const tOther = performance.now() - t0;
    assert.equal(other[0]![0]!.text, "w3");
    const words = await lonely;
    const tLonely = performance.now() - t0;
    assert.equal(words[0]![0]!.text, "w3");
    assert.ok(tLonely >= 1490, `the batch waited for its gather time (${tLonely.toFixed(0)} ms)`);
    assert.ok(tOther < tLonely, "unbatched work went ahead of the gathering batch");
    // a late call of the same batch does not wait again
    const t1 = performance.now();
    await p.decode([seg("late")], { batch: { id: "rec-2", size: 3 } });
    assert.ok(performance.now() - t1 < 1400, "late call dispatched at once");
    // a call with nothing to decode still counts: the batch completes without waiting
    const t2 = performance.now();
    const a = p.decode([seg("one")], { batch: { id: "rec-3", size: 2 } });
    assert.deepEqual(await p.decode([], { batch: { id: "rec-3", size: 2 } }), []);
    await a;
    assert.ok(performance.now() - t2 < 1400, "batch complete once both calls arrived");
  } finally {
    await p.close();
  }
});

test("segments that do not divide evenly are balanced across decoders, not just taken longest first", async () => {
  // the 3-track fixture's speech: longest-first alone puts 7.6 + 3.8 + 3.5 s on one decoder
  // and 6.4 + 5.4 s on the other (14.9 against 11.8); 13.0 against 13.7 is possible
  const seconds = [7.6, 6.4, 5.4, 3.8, 3.5];
  const p = pool({ size: 2 });
  try {
    p.warm();
    await p.decode([seg("warm-a"), seg("warm-b")]); // both decoders loaded
    const words = await p.decode(seconds.map((s) => seg(`SLEEP${Math.round(s * 60)}:${s}`, s)));
    const load = new Map<string, number>();
    words.forEach((ws, i) => {
      const pid = pidOf([ws])[0]!;
      load.set(pid, (load.get(pid) ?? 0) + seconds[i]!);
    });
    const loads = [...load.values()].map((x) => Math.round(x * 10) / 10).sort((a, b) => a - b);
    assert.deepEqual(loads, [13, 13.7], `seconds per decoder: ${loads.join(" / ")}`);
  } finally {
    await p.close();
  }
});

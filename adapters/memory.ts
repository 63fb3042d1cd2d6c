/**
 * Keeping a streaming upload's memory flat. lib-storage assembles every multipart part
 * into a fresh Buffer; V8 only collects such off-heap garbage after ~64 MB of it has piled
 * up, which alone would take a 500 MB upload past the API's 150 MB budget. After each part
 * is sent we ask V8 for an asynchronous (incremental, non-blocking) major GC.
 */
import v8 from "node:v8";
import vm from "node:vm";

type GcFn = (opts?: { type?: "major" | "minor"; execution?: "sync" | "async" }) => void;

let cached: GcFn | null | undefined;

function gcFunction(): GcFn | null {
  if (cached !== undefined) return cached;
  try {
    const existing = (globalThis as { gc?: GcFn }).gc;
    if (existing) return (cached = existing);
    v8.setFlagsFromString("--expose-gc");
    cached = vm.runInNewContext("gc") as GcFn;
  } catch {
    cached = null;
  }
  return cached;
}

/**
 * A hint that a large buffer just became garbage: an asynchronous GC, or a synchronous one
 * when off-heap memory has nevertheless grown past `syncAboveBytes` (a loaded machine can
 * delay the incremental one).
 */
export function createGcHint(opts: { syncAboveBytes?: number } = {}): () => void {
  const gc = gcFunction();
  const limit = opts.syncAboveBytes ?? 24 * 1024 * 1024;
  return () => {
    if (!gc) return;
    const sync = v8.getHeapStatistics().external_memory > limit;
    gc({ type: "major", execution: sync ? "sync" : "async" });
  };
}

/** Once, after start-up: collect what loading and migrating left behind, so idle RSS starts low. */
export function collectStartupGarbage(): void {
  gcFunction()?.({ type: "major", execution: "sync" });
}

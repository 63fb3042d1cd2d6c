/**
 * Words and topics stay out of Conductor's payloads, whatever the meeting's length. The
 * steps that produce them (merge_transcripts, suppress_bleed, detect_topics, finalize)
 * write each such field to storage under the recording's prefix, keyed by the task attempt,
 * and Conductor carries `{carried_key, count}` in its place; before any step runs, its
 * worker reads every carried field of its input back, so the pure steps and the other
 * engines see the same typed values as before.
 *
 * Why: every task input and output lives in the server's database and heap, and the server
 * copies a task's input from the outputs it reads. Inline, the merged words of an hour-long
 * meeting (~2 MB of JSON) travelled from merge to finalize through four tasks and the
 * workflow output: an hour-long, 4-track meeting left the server's JVM at 1.76 GB RSS.
 * With keys, each of these payloads is a few hundred bytes, whatever the meeting's length.
 * (The transcribe fork's words already travel so: ./transcripts.ts.)
 */
import { z } from "zod/v4";
import { StorageKey, type StepName } from "../../pipeline/contracts/index.ts";
import { StorageKeyNotFoundError, type Storage } from "../../pipeline/ports.ts";
import { derivedKey } from "../../pipeline/steps/keys.ts";

/** What Conductor carries in place of a field kept in storage. */
export const CarriedRef = z.object({ carried_key: StorageKey, count: z.number().int().nonnegative() }).strict();
export type CarriedRef = z.infer<typeof CarriedRef>;

/** The output fields each step keeps in storage under Conductor (lists: `count` is their length). */
export const CARRIED_FIELDS: Partial<Record<StepName, readonly string[]>> = {
  merge_transcripts: ["words"],
  suppress_bleed: ["words"],
  detect_topics: ["topics"],
  finalize: ["words", "topics"],
};

/** A carried field storage no longer has (or that holds something else). */
export class CarriedValueError extends Error {
  override readonly name = "CarriedValueError";
  readonly retryable = false;
}

const attemptSuffix = (attempt: string | undefined): string => (attempt ? `.${attempt.replace(/[^A-Za-z0-9-]/g, "").slice(0, 64)}` : "");

/**
 * A step's output with its carried fields written to storage and replaced by their refs.
 * Needs the recording and namespace (from the step's input) for the key; without them (an
 * input of an older workflow definition) the output stays inline. Keyed by attempt: a
 * zombie attempt that wakes up late writes beside the live one, never over it.
 */
export async function carryOut(
  storage: Pick<Storage, "put">,
  step: StepName,
  output: Record<string, unknown>,
  input: Record<string, unknown>,
  attempt?: string,
): Promise<Record<string, unknown>> {
  const fields = CARRIED_FIELDS[step] ?? [];
  const recording = input.recording_id;
  const namespace = input.namespace;
  if (fields.length === 0 || typeof recording !== "string" || typeof namespace !== "string") return output;
  const out = { ...output };
  for (const field of fields) {
    const value = output[field];
    if (!Array.isArray(value)) continue;
    const carried_key = derivedKey(recording, namespace, "carried", `${step}.${field}${attemptSuffix(attempt)}.json`);
    await storage.put(carried_key, Buffer.from(JSON.stringify(value)), "application/json");
    out[field] = { carried_key, count: value.length } satisfies CarriedRef;
  }
  return out;
}

/** One value read back if it is a ref (anything else is returned as it is). */
export async function loadCarriedValue(storage: Pick<Storage, "get">, value: unknown): Promise<unknown> {
  const ref = CarriedRef.safeParse(value);
  if (!ref.success) return value;
  let text: string;
  try {
    text = (await storage.get(ref.data.carried_key)).toString("utf8");
  } catch (err) {
    if (err instanceof StorageKeyNotFoundError) throw new CarriedValueError(`${ref.data.carried_key} is not in storage`);
    throw err;
  }
  const list = JSON.parse(text) as unknown;
  if (!Array.isArray(list) || list.length !== ref.data.count) {
    throw new CarriedValueError(`${ref.data.carried_key} does not hold the ${ref.data.count} item(s) its task reported`);
  }
  return list;
}

/** An input or output object with every carried field (top level) read back. */
export async function loadCarried(storage: Pick<Storage, "get">, value: Record<string, unknown>): Promise<Record<string, unknown>> {
  const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await loadCarriedValue(storage, v)] as const));
  return Object.fromEntries(entries);
}

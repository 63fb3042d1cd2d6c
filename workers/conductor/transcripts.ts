/**
 * Transcripts stay out of Conductor's payloads. A track's words go to storage (a JSON file
 * next to its derived audio) and transcribe_track's Conductor output carries the key and
 * the count; merge_transcripts' worker reads them back before the pure step runs, so the
 * step and the other engines see the same typed transcripts as before.
 *
 * Why: the server evaluates the JOIN after the tracks about 20 times a second until the
 * last track is done, and each evaluation loads the workflow and writes the JOIN's output,
 * which holds the output of every track already finished. `npm run bench:join`, side by
 * side on this server: two finished tracks of 1 MB of words each (26 000 words, some three
 * hours of speech) and a third still running: 1.16 cores of server CPU (of 2) while the
 * JOIN waited with the words inline, 0.13 with keys, and the JOIN completed 381 ms after
 * the last track instead of 46 ms. With keys its output stays a few hundred bytes per
 * track, whatever the meeting's length.
 */
import { z } from "zod/v4";
import { Word, type TranscribeTrackInput, type TranscribeTrackOutput } from "../../pipeline/contracts/index.ts";
import { StorageKeyNotFoundError, type Storage } from "../../pipeline/ports.ts";
import { derivedKey } from "../../pipeline/steps/keys.ts";
import { TranscribeTrackConductorOutput } from "./contracts.ts";


/** A transcript the JOIN names but storage no longer has (or holds something else). */
export class TranscriptUnavailableError extends Error {
  override readonly name = "TranscriptUnavailableError";
  readonly retryable = false;
}

/**
 * Store the words of a transcribe_track output; returns what Conductor carries instead.
 * The object is keyed by the task attempt (`attempt`: Conductor's task id): delivery is at
 * least once, and an attempt Conductor gave up on (its worker paused past the response
 * timeout, then woke) may still finish and write. Under its own key it cannot overwrite
 * the live attempt's words, and the JOIN only ever names the key of the attempt Conductor
 * accepted.
 */
export async function storeTranscript(
  storage: Pick<Storage, "put">,
  input: Pick<TranscribeTrackInput, "recording_id" | "namespace">,
  out: TranscribeTrackOutput,
  attempt?: string,
): Promise<TranscribeTrackConductorOutput> {
  const suffix = attempt ? `.${attempt.replace(/[^A-Za-z0-9-]/g, "").slice(0, 64)}` : "";
  const words_key = derivedKey(input.recording_id, input.namespace, "transcript", `track-${out.track_index}${suffix}.json`);
  await storage.put(words_key, Buffer.from(JSON.stringify(out.words)), "application/json");
  const { words, ...rest } = out;
  return TranscribeTrackConductorOutput.parse({ ...rest, words_key, word_count: words.length });
}

/** One transcribe output with its words read back (anything else is returned as it is). */
export async function loadTranscript(storage: Pick<Storage, "get">, value: unknown): Promise<unknown> {
  const ref = TranscribeTrackConductorOutput.safeParse(value);
  if (!ref.success || (value as { words?: unknown }).words !== undefined) return value;
  let text: string;
  try {
    text = (await storage.get(ref.data.words_key)).toString("utf8");
  } catch (err) {
    if (err instanceof StorageKeyNotFoundError) throw new TranscriptUnavailableError(`track ${ref.data.track_index}: its transcript ${ref.data.words_key} is not in storage`);
    throw err;
  }
  const words = z.array(Word).safeParse(JSON.parse(text));
  if (!words.success || words.data.length !== ref.data.word_count) {
    throw new TranscriptUnavailableError(`track ${ref.data.track_index}: ${ref.data.words_key} does not hold the ${ref.data.word_count} words its task reported`);
  }
  const { words_key: _key, word_count: _count, ...rest } = value as Record<string, unknown>;
  return { ...rest, words: words.data };
}

/** A JOIN output (dict by reference name, or a list) with every transcript read back. */
export async function loadTranscripts(storage: Pick<Storage, "get">, transcripts: unknown): Promise<unknown> {
  if (Array.isArray(transcripts)) return Promise.all(transcripts.map((v) => loadTranscript(storage, v)));
  if (transcripts && typeof transcripts === "object") {
    const entries = await Promise.all(Object.entries(transcripts).map(async ([k, v]) => [k, await loadTranscript(storage, v)] as const));
    return Object.fromEntries(entries);
  }
  return transcripts;
}

/**
 * Ports: the only ways a step touches the outside world. Adapters construct them at
 * process start (one wiring point per process) and pass them to the steps.
 */
import type { Readable } from "node:stream";
import type { ActionItem, Span, Topic, Word } from "./contracts/index.ts";

/** Object storage (local directory for the CLI, S3 for the service). */
export interface Storage {
  /** human-readable description for logs and error messages */
  readonly describe: string;
  put(key: string, body: Buffer | Readable, contentType?: string): Promise<void>;
  putFile(key: string, path: string, contentType?: string): Promise<void>;
  get(key: string): Promise<Buffer>;
  /** download into a local file; throws StorageKeyNotFoundError when absent */
  getToFile(key: string, path: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** byte size, or undefined when the key does not exist */
  size(key: string): Promise<number | undefined>;
  /** stream a byte range (inclusive end) or the whole object */
  stream(key: string, range?: { start: number; end: number }): Promise<Readable>;
  deletePrefix(prefix: string): Promise<number>;
  list(prefix: string): Promise<string[]>;
}

export class StorageKeyNotFoundError extends Error {
  override readonly name = "StorageKeyNotFoundError";
  constructor(readonly key: string, where: string) {
    super(`storage key not found: ${key} (in ${where})`);
  }
}

/** A word as an ASR engine returns it: seconds relative to the audio it was given. */
export interface AsrWord {
  text: string;
  start: number;
  end: number;
  confidence?: number;
  /** "interpolated": the engine gave no time for this word; it was spread over its segment by length */
  timing?: "interpolated";
}

/**
 * What the shells (worker hosts, the heavy-step child runner) need to know about an ASR
 * engine. Declared by the engine and also derivable from the config alone
 * (`asrCapabilities` in ./asr/index.ts), because a host decides before any engine exists:
 * the engine itself is built in the child process that will use it.
 */
export interface AsrCapabilities {
  /**
   * Worker hosts load the engine (`warm()`) as they start, in the process that will
   * transcribe: it keeps what it loads (models in long-lived decoders), so loading early
   * takes the load off the first recording. False: loading early would be undone, or there
   * is nothing to load.
   */
  readonly preload: boolean;
  /**
   * One child process serves every track's transcription, several calls at once: the
   * engine spreads the work of all the tracks it holds over its own workers (a decoder
   * pool), so one engine per process must see them all. False: each call may run in a
   * child of its own.
   */
  readonly sharedChild: boolean;
}

export interface AsrEngine {
  readonly name: string;
  readonly capabilities: AsrCapabilities;
  /**
   * Transcribe a 16 kHz mono WAV file. `spans` (seconds, file-local) limit decoding to
   * those parts; words come back in file-local seconds.
   */
  transcribe(
    wavPath: string,
    opts: {
      language: string;
      spans?: Span[];
      signal?: AbortSignal;
      onProgress?: (fraction: number) => void;
      /** the meeting's participant names (an HTTP engine sends them as the prompt, so names are spelled right) */
      participants?: readonly string[];
      /** this call is one of `size` (the tracks of one meeting) arriving close together */
      batch?: { id: string; size: number };
    },
  ): Promise<AsrWord[]>;
  /** get ready for a transcription that will follow soon (load models); optional */
  warm?(): void;
  /** release what the engine holds (decoder processes); optional */
  close?(): Promise<void>;
}

/** Text analysis engine (offline NLP or an OpenAI-compatible chat model). */
export interface TextModel {
  readonly name: string;
  detectTopics(words: Word[], language: string): Promise<Topic[]>;
  generateTitle(topics: Topic[], language: string): Promise<string>;
  generateSummary(topics: Topic[], language: string): Promise<{ short_summary: string; long_summary: string }>;
  /** sentences that commit someone to do something, in time order; owner = the sentence's speaker */
  extractActionItems(words: Word[], language: string): Promise<ActionItem[]>;
}

/** Audio tools (ffmpeg/sox behind a small interface). */
export interface AudioTools {
  /** decode any ffmpeg-readable file to 16 kHz mono s16le WAV; returns duration in seconds */
  decodeToWav(inputPath: string, outPath: string, signal?: AbortSignal): Promise<{ duration: number }>;
  /** mix aligned tracks (offset seconds) into one MP3 */
  mixdownMp3(inputs: { path: string; offset_seconds: number }[], outPath: string, signal?: AbortSignal): Promise<{ duration: number }>;
}

/** Where a step may write scratch files; the adapter cleans it up. */
export interface Scratch {
  dir: string;
}

/** Step progress reporting (progress bar, Postgres events, logs). */
export type ProgressSink = (p: { step: string; track_index?: number; fraction?: number; message?: string }) => void;

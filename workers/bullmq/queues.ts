/**
 * One BullMQ queue per step, sharing one Redis connection. Queue names contain no ':'
 * (BullMQ refuses it); the key prefix (BULLMQ_PREFIX, or one per test) keeps
 * deployments and test runs apart.
 */
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { StepName } from "../../pipeline/contracts/index.ts";

export const queueName = (step: StepName): string => `step-${step}`;
export const allSteps = (): StepName[] => [...StepName.options];

export interface StepQueues {
  readonly prefix: string;
  get(step: StepName): Queue;
  all(): Queue[];
  close(): Promise<void>;
}

export function createStepQueues(connection: Redis, prefix: string): StepQueues {
  const queues = new Map<StepName, Queue>(allSteps().map((s) => [s, new Queue(queueName(s), { connection, prefix })]));
  return {
    prefix,
    get: (step) => queues.get(step)!,
    all: () => [...queues.values()],
    close: async () => {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}

/** Delete every Redis key under a BullMQ prefix (test runs, benchmarks). */
export async function dropPrefix(connection: Redis, prefix: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await connection.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
    cursor = next;
    if (keys.length) deleted += await connection.del(...keys);
  } while (cursor !== "0");
  return deleted;
}

/** `*`, `?`, `[`, `]` and `\` taken literally in a SCAN pattern. */
const globLiteral = (s: string): string => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/**
 * The recordings deleted in the last day, a sorted set (score: when) under the prefix. Its
 * key holds no recording id, so a scan for a recording's keys does not find it. A job still
 * running when its recording was deleted cannot be removed then (it is locked); the worker
 * that finishes it looks here and removes it (worker-host.ts), and a job of a deleted
 * recording that had not started yet is not run.
 */
export const forgottenKey = (prefix: string): string => `${prefix}:forgotten-recordings`;
const FORGET_FOR_MS = 24 * 3600_000;

export async function markForgotten(connection: Redis, prefix: string, recordingId: string): Promise<void> {
  const now = Date.now();
  await connection.multi().zadd(forgottenKey(prefix), now, recordingId).zremrangebyscore(forgottenKey(prefix), "-inf", now - FORGET_FOR_MS).exec();
}

export async function isForgotten(connection: Redis, prefix: string, recordingId: string): Promise<boolean> {
  return (await connection.zscore(forgottenKey(prefix), recordingId)) !== null;
}

/**
 * Remove every job of a recording from every step queue: its authoritative and shadow
 * namespaces alike (job ids start with the URI-encoded recording id, pipeline/state/graph.ts
 * `jobId`), finished or waiting, with their logs. A job still running is locked by its
 * worker and stays (`running` counts them); marked forgotten first, it removes itself when
 * it finishes, and the storage sweeper calls again. A deleted recording leaves nothing in
 * Redis this way, instead of waiting for the jobs' age-based removal (an hour after
 * completion, a day after failure).
 */
export async function removeRecordingJobs(connection: Redis, queues: StepQueues, recordingId: string): Promise<{ removed: number; running: number }> {
  // first: a job that is running now removes itself when it finishes
  await markForgotten(connection, queues.prefix, recordingId);
  let removed = 0;
  let running = 0;
  for (const step of allSteps()) {
    const queue = queues.get(step);
    const base = `${queues.prefix}:${queueName(step)}:`;
    const ids = new Set<string>();
    let cursor = "0";
    do {
      const [next, keys] = await connection.scan(cursor, "MATCH", `${globLiteral(base + encodeURIComponent(recordingId))}/*`, "COUNT", 500);
      cursor = next;
      // `<base><job id>` is the job, `<base><job id>:logs` (and the like) belong to it; ids hold no ':'
      for (const k of keys) ids.add(k.slice(base.length).split(":")[0]!);
    } while (cursor !== "0");
    for (const id of ids) {
      if ((await queue.remove(id)) === 1) removed++;
      else running++;
    }
  }
  return { removed, running };
}

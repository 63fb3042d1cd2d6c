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

/**
 * IPC messages between the supervisor and its worker children (Node's fork channel, JSON).
 * Parsed with zod on both sides: a malformed message is logged and dropped, never trusted.
 */
import { z } from "zod/v4";

/** supervisor → child */
export const ToChild = z.discriminatedUnion("type", [
  /** stop polling, let in-flight tasks finish (up to drain_ms), report `drained`, exit 0 */
  z.object({ type: z.literal("stop"), drain_ms: z.number().int().nonnegative() }),
]);
export type ToChild = z.infer<typeof ToChild>;

/** child → supervisor */
export const FromChild = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready"), worker_id: z.string().min(1), build: z.string().min(1) }),
  /** the ids of the tasks the child is running now; sent whenever the set changes */
  z.object({ type: z.literal("inflight"), task_ids: z.array(z.string()) }),
  /** the child's drain ended; `cut_off` are tasks its host abandoned at the drain deadline */
  z.object({ type: z.literal("drained"), cut_off: z.array(z.string()) }),
]);
export type FromChild = z.infer<typeof FromChild>;

/** Environment variables the supervisor sets for each child. */
export const CHILD_ENV = {
  slot: "WORKER_SLOT",
  idPid: "WORKER_ID_PID",
  workDir: "WORK_DIR",
} as const;

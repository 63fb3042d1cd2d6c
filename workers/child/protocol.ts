/**
 * Framing of the child channel (Node's IPC channel, JSON). Every request carries an `id`
 * and every answer names it, so several messages can be in flight at once: a long `call`
 * never blocks `ping` or `shutdown`, which the child answers from its event loop while
 * the call's work runs asynchronously.
 */
import { z } from "zod/v4";

const Id = z.number().int().nonnegative();

/** parent → child */
export const ToChildMessage = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("call"), id: Id, method: z.string().min(1), params: z.unknown() }),
  z.object({ kind: z.literal("cancel"), id: Id }),
  z.object({ kind: z.literal("ping"), id: Id }),
  /** abort running calls and exit */
  z.object({ kind: z.literal("shutdown") }),
]);
export type ToChildMessage = z.infer<typeof ToChildMessage>;

export const RemoteError = z.object({
  name: z.string(),
  message: z.string(),
  retryable: z.boolean().optional(),
  stack: z.string().optional(),
});
export type RemoteError = z.infer<typeof RemoteError>;

/** child → parent */
export const FromChildMessage = z.union([
  z.object({ kind: z.literal("ready"), pid: z.number().int() }),
  z.object({ kind: z.literal("result"), id: Id, ok: z.literal(true), value: z.unknown() }),
  z.object({ kind: z.literal("result"), id: Id, ok: z.literal(false), error: RemoteError }),
  z.object({ kind: z.literal("progress"), id: Id, progress: z.unknown() }),
  z.object({ kind: z.literal("pong"), id: Id }),
]);
export type FromChildMessage = z.infer<typeof FromChildMessage>;

/** Size of a message as it travels (JSON), in bytes. */
export const messageBytes = (msg: unknown): number => Buffer.byteLength(JSON.stringify(msg) ?? "", "utf8");

/** The env variable through which the parent tells the child its payload cap. */
export const MAX_PAYLOAD_ENV = "CHILD_MAX_PAYLOAD_BYTES";

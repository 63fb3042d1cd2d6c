/**
 * The errors every pure machine of the project throws (the pipeline's, the decoder
 * scheduler's, the supervisor's): one shape, so a bug report reads the same whichever
 * machine found it.
 */
import type { z } from "zod/v4";

/** One recorded transition of a machine's subject (a task, a decoder, a slot). */
export interface TransitionRecord {
  seq: number;
  event_id: string;
  from: string;
  to: string;
}

/** A transition not in the machine's table: a bug, reported with the subject's story. */
export class IllegalTransitionError<H extends TransitionRecord = TransitionRecord> extends Error {
  override readonly name = "IllegalTransitionError";
  constructor(
    readonly subject: string,
    readonly from: string,
    readonly to: string,
    readonly eventId: string,
    readonly history: readonly H[],
    /** what else a history line says (an attempt, a pid) */
    detail: (h: H) => string = () => "",
  ) {
    const story = history.length ? history.map((h) => `    #${h.seq} ${h.event_id}: ${h.from} → ${h.to}${detail(h)}`).join("\n") : "    (no transitions yet)";
    super(`illegal transition of ${subject}: ${from} → ${to} on event ${eventId}\n  history:\n${story}`);
  }
}

/** The event does not match the machine's event schema: nothing was changed. */
export class EventSchemaError extends Error {
  override readonly name = "EventSchemaError";
  constructor(
    machine: string,
    readonly zodError: z.ZodError,
  ) {
    super(`invalid ${machine} event: ${zodError.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  }
}

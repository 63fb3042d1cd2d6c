/**
 * Admission control: how many of a kind of request may run at once. A request over the cap
 * is answered 503 with Retry-After before it costs anything (an upload's body is not read).
 */
import { ApiError } from "./errors.ts";

export interface Gate {
  /** a release function, or undefined when the gate is full */
  tryEnter(key?: string): (() => void) | undefined;
  readonly open: number;
}

/** At most `max` at once in total, and at most `perKey` for one key (e.g. a recording). */
export function createGate(max: number, perKey = Infinity): Gate {
  let open = 0;
  const byKey = new Map<string, number>();
  return {
    tryEnter(key) {
      const mine = key === undefined ? 0 : (byKey.get(key) ?? 0);
      if (open >= max || mine >= perKey) return undefined;
      open++;
      if (key !== undefined) byKey.set(key, mine + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        open--;
        if (key !== undefined) {
          const n = (byKey.get(key) ?? 1) - 1;
          if (n <= 0) byKey.delete(key);
          else byKey.set(key, n);
        }
      };
    },
    get open() {
      return open;
    },
  };
}

export class BusyError extends ApiError {
  override readonly name = "BusyError";
  constructor(
    code: string,
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(503, code, message);
  }
}

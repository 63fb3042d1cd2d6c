/**
 * Live event notifications: one dedicated Postgres connection LISTENs on the events
 * channel (workers in any process NOTIFY through adapters/postgres/events.ts) and wakes the SSE
 * streams of that recording. Reconnects with back-off; SSE streams also poll, so a lost
 * connection only delays updates.
 */
import pg from "pg";
import type { Logger } from "pino";
import { EVENTS_CHANNEL } from "./events.ts";

export interface EventHub {
  subscribe(recordingId: string, onEvent: () => void): () => void;
  close(): Promise<void>;
}

export function createEventHub(clientConfig: pg.ClientConfig, log: Logger): EventHub {
  const subscribers = new Map<string, Set<() => void>>();
  let client: pg.Client | undefined;
  let closed = false;
  let delay = 500;
  let timer: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    if (closed) return;
    const c = new pg.Client(clientConfig);
    c.on("notification", (msg) => {
      if (msg.channel !== EVENTS_CHANNEL || !msg.payload) return;
      for (const fn of subscribers.get(msg.payload) ?? []) fn();
    });
    c.on("error", (err) => {
      log.warn({ err }, "event notification connection lost; reconnecting");
      void c.end().catch(() => undefined);
      if (client === c) client = undefined;
      schedule();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${EVENTS_CHANNEL}`);
      if (closed) {
        await c.end();
        return;
      }
      client = c;
      delay = 500;
    } catch (err) {
      log.warn({ err }, "could not LISTEN for events; retrying");
      await c.end().catch(() => undefined);
      schedule();
    }
  };
  const schedule = (): void => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delay);
    timer.unref();
    delay = Math.min(delay * 2, 30_000);
  };
  void connect();

  return {
    subscribe(recordingId, onEvent) {
      let set = subscribers.get(recordingId);
      if (!set) subscribers.set(recordingId, (set = new Set()));
      set.add(onEvent);
      return () => {
        set!.delete(onEvent);
        if (set!.size === 0) subscribers.delete(recordingId);
      };
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

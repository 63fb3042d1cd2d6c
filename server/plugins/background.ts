/**
 * The API's background loops, started when the app is ready and stopped when it closes:
 * each runs `work` every `seconds` (0: never), one run at a time.
 */
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";

export interface BackgroundOptions {
  loops: { name: string; seconds: number; work: () => Promise<unknown> }[];
}

async function backgroundPlugin(app: FastifyInstance, opts: BackgroundOptions): Promise<void> {
  const timers: NodeJS.Timeout[] = [];
  for (const loop of opts.loops) {
    if (loop.seconds <= 0) continue;
    let running = false;
    app.addHook("onReady", async () => {
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        loop
          .work()
          .catch((err: unknown) => app.log.warn({ err, loop: loop.name }, "background loop failed; the next run tries again"))
          .finally(() => {
            running = false;
          });
      }, loop.seconds * 1000);
      timer.unref();
      timers.push(timer);
    });
  }
  app.addHook("onClose", async () => {
    for (const t of timers) clearInterval(t);
  });
}

export default fp(backgroundPlugin, { name: "trackscribe-background", fastify: "5.x" });

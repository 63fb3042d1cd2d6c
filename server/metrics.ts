/** Prometheus metrics of one API instance (its own registry: no global state). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RecordingStatus } from "../adapters/postgres/recordings-repo.ts";

export interface ApiMetrics {
  registry: Registry;
  httpDuration: Histogram<"method" | "route" | "status">;
  uploads: Counter<"outcome">;
  uploadBytes: Counter;
  sseClients: Gauge;
  sweptObjects: Counter<"reason">;
}

export function createMetrics(opts: { countByStatus?: () => Promise<Record<RecordingStatus, number>> } = {}): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "trackscribe_api_" });
  const httpDuration = new Histogram({
    name: "trackscribe_http_request_duration_seconds",
    help: "HTTP request duration by route and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [registry],
  });
  const uploads = new Counter({
    name: "trackscribe_uploads_total",
    help: "Recording uploads by outcome (accepted, or the error code that refused them)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const uploadBytes = new Counter({ name: "trackscribe_upload_bytes_total", help: "Track bytes received and stored", registers: [registry] });
  const sseClients = new Gauge({ name: "trackscribe_sse_clients", help: "Open event streams", registers: [registry] });
  const sweptObjects = new Counter({
    name: "trackscribe_storage_swept_objects_total",
    help: "Objects the storage sweeper removed: written under a deleted recording after its deletion, or left by an upload that never finished",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  if (opts.countByStatus) {
    const count = opts.countByStatus;
    new Gauge({
      name: "trackscribe_recordings",
      help: "Recordings by status",
      labelNames: ["status"] as const,
      registers: [registry],
      async collect() {
        try {
          const counts = await count();
          for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
        } catch {
          /* the database being down shows in /readyz; metrics still answer */
        }
      },
    });
  }
  return { registry, httpDuration, uploads, uploadBytes, sseClients, sweptObjects };
}

/**
 * A fetch for the worker host's calls to Conductor, on node:http(s) with keep-alive
 * sockets instead of the global fetch.
 *
 * Why: a worker host sends a request for every poll and every result (about 70 per
 * recording), and the decoders on the same cores want the CPU. Against the real server,
 * 400 empty polls in a row cost the Node process 1.0–1.1 ms of CPU each through the global
 * fetch and 0.42–0.47 ms through node:http, and took 2.1–3.3 ms instead of 1.5–1.6 ms from
 * send to answer (`.work`-style side-by-side runs, same server, same process).
 *
 * What it supports is what the SDK and our held polls send: any method, headers, a body
 * (string, bytes or a Request's body), an AbortSignal (the request is destroyed and the
 * promise rejects with the signal's reason). The answer is a standard Response with the
 * whole body read. No redirects are followed and no compression is asked for (Conductor's
 * API neither redirects nor needs it on a local network).
 */
import http from "node:http";
import https from "node:https";

export interface HttpFetch {
  fetch: typeof fetch;
  /** closes the idle keep-alive sockets; requests after this still work (new sockets) */
  close(): void;
}

/** `maxSockets`: sockets per origin (polls of every task type are held at once, plus results) */
export function createHttpFetch(opts: { maxSockets?: number } = {}): HttpFetch {
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 32 }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 32 }),
  };
  const send = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req = input instanceof Request ? input : undefined;
    const url = new URL(req ? req.url : input instanceof URL ? input.href : String(input));
    const agent = agents[url.protocol as keyof typeof agents];
    if (!agent) throw new TypeError(`unsupported protocol ${url.protocol} in ${url.href}`);
    const method = (init?.method ?? req?.method ?? "GET").toUpperCase();
    const headers = new Headers(req?.headers);
    if (init?.headers) new Headers(init.headers).forEach((v, k) => headers.set(k, v));
    const signal = init?.signal ?? req?.signal ?? undefined;
    signal?.throwIfAborted();
    let body: Buffer | undefined;
    if (init?.body !== undefined && init.body !== null) body = await bodyBytes(init.body);
    else if (req && req.body) body = Buffer.from(await req.arrayBuffer());
    if (body && !headers.has("content-type")) headers.set("content-type", "text/plain;charset=UTF-8");
    const out: Record<string, string> = {};
    headers.forEach((v, k) => (out[k] = v));
    if (body) out["content-length"] = String(body.length);
    const lib = url.protocol === "https:" ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const onAbort = (): void => {
        request.destroy();
        reject(signal!.reason);
      };
      const request = lib.request(url, { method, headers: out, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        });
        res.on("end", () => {
          signal?.removeEventListener("abort", onAbort);
          const status = res.statusCode ?? 0;
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
          }
          const text = [101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
          resolve(new Response(text, { status, statusText: res.statusMessage ?? "", headers: h }));
        });
      });
      request.on("error", (err) => {
        signal?.removeEventListener("abort", onAbort);
        reject(new TypeError(`fetch failed: ${err.message}`, { cause: err }));
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      request.end(body);
    });
  };
  return {
    fetch: send as typeof fetch,
    close() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
}

async function bodyBytes(body: NonNullable<RequestInit["body"]>): Promise<Buffer> {
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // Blob, FormData, URLSearchParams, streams: let a Response read them
  return Buffer.from(await new Response(body).arrayBuffer());
}

/**
 * The worker host's keep-alive fetch (workers/conductor/http-fetch.ts) against a real
 * HTTP server on loopback: what the SDK and the held polls send comes out the same as
 * with the global fetch.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { createHttpFetch } from "../../workers/conductor/http-fetch.ts";

let server: http.Server;
let base = "";
const sockets = new Set<string>();

before(async () => {
  server = http.createServer((req, res) => {
    sockets.add(`${req.socket.remotePort}`);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url!, "http://x");
      if (url.pathname === "/slow") {
        setTimeout(() => res.end("late"), 5000).unref();
        return;
      }
      if (url.pathname === "/empty") {
        res.writeHead(204).end();
        return;
      }
      res.setHeader("set-cookie", ["a=1", "b=2"]);
      res.writeHead(url.pathname === "/missing" ? 404 : 200, { "content-type": "application/json" });
      res.end(JSON.stringify({ method: req.method, path: url.pathname, query: url.search, type: req.headers["content-type"] ?? null, custom: req.headers["x-custom"] ?? null, body: Buffer.concat(chunks).toString("utf8") }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test("requests as the SDK sends them (a Request with a body, url + init, query strings) arrive intact, answers come back whole", async () => {
  const h = createHttpFetch();
  try {
    const viaRequest = await h.fetch(new Request(`${base}/api/tasks?x=1`, { method: "POST", headers: { "content-type": "application/json", "x-custom": "v" }, body: JSON.stringify({ taskId: "t" }) }));
    assert.equal(viaRequest.status, 200);
    assert.deepEqual(await viaRequest.json(), { method: "POST", path: "/api/tasks", query: "?x=1", type: "application/json", custom: "v", body: '{"taskId":"t"}' });
    assert.deepEqual(viaRequest.headers.getSetCookie(), ["a=1", "b=2"], "repeated headers kept");
    const viaInit = await h.fetch(`${base}/api/poll`, { headers: { "x-custom": "w" } });
    assert.deepEqual(await viaInit.json(), { method: "GET", path: "/api/poll", query: "", type: null, custom: "w", body: "" });
    const bytes = await h.fetch(new URL(`${base}/b`), { method: "PUT", body: new TextEncoder().encode("héllo") });
    assert.equal(((await bytes.json()) as { body: string }).body, "héllo");
    const missing = await h.fetch(`${base}/missing`);
    assert.equal(missing.status, 404);
    assert.equal(missing.ok, false);
    const empty = await h.fetch(`${base}/empty`, { method: "DELETE" });
    assert.equal(empty.status, 204);
    assert.equal(await empty.text(), "");
  } finally {
    h.close();
  }
});

test("sockets are kept alive between requests; an aborted request rejects with the signal's reason; a refused connection rejects", async () => {
  const h = createHttpFetch();
  try {
    sockets.clear();
    for (let i = 0; i < 5; i++) await (await h.fetch(`${base}/k`)).text();
    assert.equal(sockets.size, 1, "five requests, one socket");
    const ctl = new AbortController();
    const slow = h.fetch(`${base}/slow`, { signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error("given up")), 20);
    await assert.rejects(slow, /given up/);
    await assert.rejects(h.fetch(`${base}/k`, { signal: AbortSignal.abort(new Error("before")) }), /before/);
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await assert.rejects(h.fetch(`http://127.0.0.1:${port}/x`), (e: Error) => e instanceof TypeError && /fetch failed/.test(e.message));
    await assert.rejects(h.fetch("ftp://127.0.0.1/x"), /unsupported protocol ftp:/);
  } finally {
    h.close();
  }
  // after close, a request still goes out (on a new socket)
  assert.equal((await h.fetch(`${base}/k`)).status, 200);
  h.close();
});

/** What a client may read of a failure: codes and scrubbed messages (pipeline/failures.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod/v4";
import { clientFailure, formatFailure, PublicError, publicFailure, scrub } from "../../pipeline/failures.ts";
import { PrepareTrackInput } from "../../pipeline/contracts/index.ts";

test("scrub removes addresses, paths, bodies and everything after the first line", () => {
  const text = "chat endpoint http://llm.internal:11434/v1/chat/completions refused (HTTP 500: {\"error\":\"secret\"})\n  at stack line\nlog tail: token=abc";
  const out = scrub(text);
  assert.doesNotMatch(out, /llm\.internal|11434|secret|stack|token/);
  assert.match(out, /chat endpoint <address> refused/);
  assert.equal(scrub("cannot open /var/lib/trackscribe/scratch/x.wav"), "cannot open <path>");
  assert.equal(scrub("10.1.2.3:5432 refused"), "<address> refused");
  assert.ok(scrub("x".repeat(1000)).length <= 300);
});

test("known errors map to stable codes; their own text (URLs, bodies, log tails) never shows", () => {
  class LlmError extends Error {
    override readonly name = "LlmError";
  }
  const llm = publicFailure(new LlmError("generate_title: chat endpoint http://10.0.0.5:8000/v1 refused the request (HTTP 500: upstream exploded)"));
  assert.deepEqual(llm, { code: "text_model_unavailable", message: "the text model did not give a usable answer" });
  class WorkerCrashError extends Error {
    override readonly name = "WorkerCrashError";
  }
  assert.equal(publicFailure(new WorkerCrashError("child 123 killed by SIGKILL; log tail: ...")).code, "worker_crashed");
  assert.equal(publicFailure(new Error("ECONNREFUSED 127.0.0.1:5432")).code, "step_failed");
  assert.doesNotMatch(publicFailure(new Error("ECONNREFUSED 127.0.0.1:5432")).message, /127|ECONN/);
  const pe = publicFailure(new PublicError("limit_exceeded", "track 1 is 5 h long; the limit is 4 h", { detail: "probe of s3://bucket/key" }));
  assert.deepEqual(pe, { code: "limit_exceeded", message: "track 1 is 5 h long; the limit is 4 h" });
});

test("a recording id or namespace that could escape a storage prefix is invalid input", () => {
  const track = { track_index: 0, participant: "A", offset_seconds: 0, source_key: "incoming/a.wav" };
  for (const recording_id of ["../x", "a/b", "", "x".repeat(65), "a b", "..", "%2e%2e"]) {
    const r = PrepareTrackInput.safeParse({ recording_id, namespace: "conductor", track });
    assert.equal(r.success, false, recording_id);
    assert.equal(publicFailure(r.error).code, "invalid_input");
  }
  for (const namespace of ["../x", "A", "", "a/b"]) assert.equal(PrepareTrackInput.safeParse({ recording_id: "r1", namespace, track }).success, false, namespace);
  assert.equal(PrepareTrackInput.safeParse({ recording_id: "cli-6f1c0d2e-aaaa-4bbb-8ccc-123456789abc", namespace: "conductor", track }).success, true);
  assert.equal(z.string().safeParse(1).success, false);
});

test("failure text round-trips as [code] message; other text is read back scrubbed", () => {
  const f = { code: "worker_crashed", message: "the process running the step stopped unexpectedly" };
  assert.deepEqual(clientFailure(formatFailure(f)), f);
  assert.deepEqual(clientFailure(`transcribe_track_2: ${formatFailure(f)}`), { code: "worker_crashed", message: `transcribe_track_2: ${f.message}` });
  const legacy = clientFailure("speech backend answered 500: {\"detail\":\"cuda oom at http://gpu:9000\"}", "transcribe_track_failed");
  assert.equal(legacy?.code, "transcribe_track_failed");
  assert.doesNotMatch(legacy!.message, /cuda|gpu|9000|detail/);
  assert.deepEqual(clientFailure(`Task detect_topics failed with status FAILED and reason: '${formatFailure(f)}'`), f);
  assert.equal(clientFailure(null), null);
  assert.equal(clientFailure(""), null);
});

/** GET /v1/recordings/:id/shadow and GET /v1/shadow/summary on a Fastify app with the shadow plugin. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import Fastify from "fastify";
import { shadowRoutes } from "../../server/routes/shadow.ts";
import { compareRuns } from "../../server/shadow/compare.ts";
import { createShadowStore } from "../../server/shadow/store.ts";
import { migratedSchema, type TestSchema } from "../bullmq/db.ts";
import { asPrimary, perturbTrack, runToEnd } from "./runs.ts";

let db: TestSchema;
before(async () => {
  db = await migratedSchema("shadowroutes");
});
after(async () => {
  await db?.drop();
});

test("the shadow routes serve the full diff of a recording and the summary; unknown recordings are 404 JSON", async () => {
  const store = createShadowStore(db.pool);
  const report = compareRuns(asPrimary(runToEnd()), runToEnd(perturbTrack(0)), { werTolerance: 0, timeToleranceSeconds: 0.05, ignore: [], waveformTolerance: 0.02 });
  await store.begin("rec-x");
  await store.saveReport("rec-x", report);

  const app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // the operator (server/auth/plugin.ts sets the principal in the app; owners are tested in test/api/auth.int.test.ts)
  app.addHook("onRequest", async (req) => {
    req.principal = { kind: "operator" };
  });
  await app.register(shadowRoutes, { store, assertVisible: async () => undefined });
  try {
    const one = await app.inject({ method: "GET", url: "/v1/recordings/rec-x/shadow" });
    assert.equal(one.statusCode, 200);
    const body = one.json();
    assert.equal(body.status, "mismatched");
    assert.equal(body.counts.mismatched, report.counts.mismatched);
    const words = body.report.items.find((i: { step: string; track_index: number; check: string }) => i.step === "transcribe_track" && i.track_index === 0 && i.check === "words");
    assert.equal(words.classification, "mismatched");
    assert.match(words.summary, /"hello0"→"perturbed"/);

    const missing = await app.inject({ method: "GET", url: "/v1/recordings/nope/shadow" });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error, "not_found");

    const summary = await app.inject({ method: "GET", url: "/v1/shadow/summary" });
    assert.equal(summary.statusCode, 200);
    const s = summary.json();
    assert.equal(s.compared, 1);
    assert.equal(s.match_rate, 0);
    assert.ok(s.mismatches_by_step.some((m: { step: string }) => m.step === "transcribe_track"));
    assert.ok(s.durations.some((d: { engine: string }) => d.engine === "bullmq"));
  } finally {
    await app.close();
  }
});

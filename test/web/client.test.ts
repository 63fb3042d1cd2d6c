/**
 * The web app's typed client is generated from the API's own OpenAPI document: the
 * committed web/src/api/schema.d.ts must be what `npm run web:client` writes now, so a
 * route or schema change that the page has not been regenerated for fails here.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { generateSchema, SCHEMA_FILE } from "../../scripts/web-client.ts";

test("web/src/api/schema.d.ts is what the API's /openapi.json generates (npm run web:client)", async () => {
  const fresh = await generateSchema();
  const committed = await readFile(SCHEMA_FILE, "utf8");
  assert.ok(fresh.includes('"/v1/recordings/{id}/events"') && fresh.includes('"/v1/recordings/{id}/waveform"'), "the generation describes the API's routes");
  assert.equal(committed, fresh, "the committed client types are stale: run npm run web:client");
});

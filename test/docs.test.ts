/** docs/configuration.md and .env.example document every configuration variable, as the schema has them now. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { knownVariables } from "../pipeline/config.ts";
import { envExample, envTable, VARIABLE_DOCS } from "../pipeline/config-docs.ts";

test("every variable has a description", () => {
  for (const v of knownVariables()) assert.ok((VARIABLE_DOCS as Record<string, string>)[v]?.length, v);
});

test("docs/configuration.md's table and .env.example are current (npm run env:docs)", () => {
  const doc = readFileSync(new URL("../docs/configuration.md", import.meta.url), "utf8");
  assert.ok(doc.includes(envTable()), "docs/configuration.md's table is out of date: run npm run env:docs");
  assert.equal(readFileSync(new URL("../.env.example", import.meta.url), "utf8"), envExample(), ".env.example is out of date");
});

test("README has the two-command quick start", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  assert.match(readme, /npm install && npm run demo/);
  assert.match(readme, /^npm test\b/m);
});

#!/usr/bin/env -S node --max-semi-space-size=4
// Entry point of the `trackscribe` command (its V8 flags: workers/node-flags.ts): on a Node older than package.json's engines it
// runs again under the pinned Node (node-runtime.mjs); then registers the TypeScript
// loader and runs the CLI.
import { ensureSupportedNode } from "./node-runtime.mjs";
await ensureSupportedNode();
const { register } = await import("tsx/esm/api");
register();
const { main } = await import("./cli.ts");
process.exitCode = await main(process.argv);

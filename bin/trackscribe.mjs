#!/usr/bin/env node
// Entry point of the `trackscribe` command: on a Node older than package.json's engines it
// runs again under the pinned Node (node-runtime.mjs); then registers the TypeScript
// loader and runs the CLI.
import { ensureSupportedNode } from "./node-runtime.mjs";
await ensureSupportedNode();
const { register } = await import("tsx/esm/api");
register();
const { main } = await import("./cli.ts");
process.exitCode = await main(process.argv);

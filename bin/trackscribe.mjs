#!/usr/bin/env node
// Entry point of the `trackscribe` command: registers the TypeScript loader, then runs the CLI.
import { register } from "tsx/esm/api";
register();
const { main } = await import("./cli.ts");
process.exitCode = await main(process.argv);

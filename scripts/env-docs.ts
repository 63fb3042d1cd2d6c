/** `npm run env:docs`: rewrite the configuration table (docs/configuration.md) and .env.example from the schema. */
import { readFileSync, writeFileSync } from "node:fs";
import { envExample, envTable } from "../pipeline/config-docs.ts";

const target = "docs/configuration.md";
const doc = readFileSync(target, "utf8");
const next = doc.replace(/<!-- env:start -->[\s\S]*<!-- env:end -->/, `<!-- env:start -->\n${envTable()}\n<!-- env:end -->`);
writeFileSync(target, next);
writeFileSync(".env.example", envExample());
process.stdout.write("docs/configuration.md table and .env.example updated\n");

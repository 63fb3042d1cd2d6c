/** `npm run env:docs`: rewrite the README configuration table and .env.example from the schema. */
import { readFileSync, writeFileSync } from "node:fs";
import { envExample, envTable } from "../pipeline/config-docs.ts";

const readme = readFileSync("README.md", "utf8");
const next = readme.replace(/<!-- env:start -->[\s\S]*<!-- env:end -->/, `<!-- env:start -->\n${envTable()}\n<!-- env:end -->`);
writeFileSync("README.md", next);
writeFileSync(".env.example", envExample());
process.stdout.write("README.md configuration table and .env.example updated\n");

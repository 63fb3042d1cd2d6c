/**
 * The API's description, generated from the routes' zod schemas: /openapi.json (OpenAPI
 * 3.1) and rendered docs at /docs. Both are public: they describe the API, they hold no
 * data. Register before the routes (it collects them as they are added).
 */
import { readFileSync } from "node:fs";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { jsonSchemaTransform } from "fastify-type-provider-zod";

export interface OpenApiOptions {
  /** the API's version (default: package.json's) */
  version?: string;
}

const packageVersion = (): string =>
  (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

async function openApiPlugin(app: FastifyInstance, opts: OpenApiOptions): Promise<void> {
  // the docs' own routes (HTML, scripts, the spec) are public, whatever the UI plugin registers
  app.addHook("onRoute", (r) => {
    if (r.url === "/docs" || r.url.startsWith("/docs/")) r.config = { ...(r.config ?? {}), public: true };
  });
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "trackscribe API",
        version: opts.version ?? packageVersion(),
        description: "Multitrack meeting recordings → speaker-attributed transcripts, topics, titles, summaries. Errors are `{error, message}`.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "an API key (`trackscribe keys create`) or the operator's API_TOKEN" } } },
      security: [{ bearer: [] }],
      tags: [
        { name: "recordings", description: "upload, follow, read, retry and delete recordings" },
        { name: "shadow", description: "Conductor vs BullMQ comparisons" },
        { name: "health", description: "public probes" },
      ],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}

export default fp(openApiPlugin, { name: "trackscribe-openapi", fastify: "5.x" });

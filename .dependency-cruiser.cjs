/**
 * The layering, checked in CI (`npm run lint:layers`): dependencies point down only,
 *   shells (bin, server, workers, web) → adapters → pipeline.
 * pipeline/ is the pure core (contracts, ports, steps, graph, state machine, pure helpers):
 * it imports nothing of ours outside itself. adapters/ implements the ports (storage,
 * Postgres, Conductor, BullMQ, speech, chat, ffmpeg) and imports only pipeline/. The worker
 * shells never import the API shell; the API hosts shadow workers, so server/ may use
 * workers/ (one way). Dynamic import() counts like a static one.
 */
module.exports = {
  forbidden: [
    {
      name: "pipeline-is-the-core",
      comment: "pipeline/ holds contracts, ports, steps, graph, state machine and pure helpers: no adapters, shells or scripts",
      severity: "error",
      from: { path: "^pipeline/" },
      to: { path: "^(adapters|server|workers|bin|scripts|bench|web)/" },
    },
    {
      name: "pipeline-spawns-and-calls-nothing",
      comment: "processes and network calls belong to adapters; the core decides, the adapters act",
      severity: "error",
      from: { path: "^pipeline/" },
      to: { dependencyTypes: ["core"], path: "^(node:)?(child_process|http|https|http2|net|dgram|tls)$" },
    },
    {
      name: "adapters-only-use-the-core",
      comment: "an adapter implements a port of pipeline/; it knows no shell",
      severity: "error",
      from: { path: "^adapters/" },
      to: { path: "^(server|workers|bin|scripts|bench|web)/" },
    },
    {
      name: "workers-do-not-use-the-api",
      comment: "worker shells wire adapters to the core; the API is another shell",
      severity: "error",
      from: { path: "^workers/" },
      to: { path: "^(server|bin|scripts|bench)/" },
    },
    {
      name: "api-does-not-use-the-cli",
      severity: "error",
      from: { path: "^server/" },
      to: { path: "^(bin|scripts|bench)/" },
    },
    {
      name: "web-is-a-client",
      comment: "the web app talks to the API over HTTP only (its types are generated from /openapi.json): it imports nothing of the server's layers",
      severity: "error",
      from: { path: "^web/" },
      to: { path: "^(pipeline|adapters|server|workers|bin|scripts|bench|workflows)/" },
    },
    {
      name: "server-does-not-import-the-web-app",
      comment: "the API serves web/dist as files; it never imports the page's code",
      severity: "error",
      from: { path: "^(pipeline|adapters|server|workers|bin)/" },
      to: { path: "^web/" },
    },
    {
      name: "no-circular",
      comment: "a cycle between modules hides which one is the lower layer",
      severity: "error",
      from: { path: "^(pipeline|adapters|server|workers)/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)node_modules/" },
    tsPreCompilationDeps: true,
    // a type-only import is a dependency too: it couples the layers just the same
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".tsx", ".mts", ".js", ".mjs", ".json"] },
  },
};

export * from "./domain.ts";
export * from "./manifest.ts";
export * from "./steps.ts";
export * from "./progress.ts";

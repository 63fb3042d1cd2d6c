export { NotAudioError, AudioToolError } from "./errors.ts";
export * from "./sniff.ts";
export * from "./envelope.ts";
export * from "./planner.ts";
export * from "./bleed.ts";
export * from "./wav.ts";

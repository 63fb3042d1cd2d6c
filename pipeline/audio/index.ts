export { createFfmpegAudioTools, NotAudioError, AudioToolError, probeDuration } from "./ffmpeg.ts";
export * from "./envelope.ts";
export * from "./planner.ts";
export * from "./bleed.ts";
export * from "./wav.ts";

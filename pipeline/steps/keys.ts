import path from "node:path";

/** Storage keys of derived audio: per recording and per engine namespace, so shadow runs never collide. */
export const derivedKey = (recordingId: string, namespace: string, kind: "pcm" | "envelope" | "mixdown" | "transcript" | "carried", name: string): string =>
  `recordings/${recordingId}/${namespace}/${kind}/${name}`;

/** A client's file name made safe inside a storage key (no directories, no dot files, short). */
export function safeFileName(name: string): string {
  const cleaned = path.basename(name).replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "");
  return (cleaned || "track").slice(-100);
}

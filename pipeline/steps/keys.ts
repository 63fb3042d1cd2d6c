/** Storage keys of derived audio: per recording and per engine namespace, so shadow runs never collide. */
export const derivedKey = (recordingId: string, namespace: string, kind: "pcm" | "envelope" | "mixdown" | "transcript", name: string): string =>
  `recordings/${recordingId}/${namespace}/${kind}/${name}`;

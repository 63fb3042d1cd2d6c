/**
 * A real task that takes a few seconds (so a signal can arrive while it runs): speech
 * synthesized with espeak-ng, prepared and planned in this process, ready to be
 * transcribed by a worker as `transcribe_track`.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { Config } from "../../pipeline/config.ts";
import type { SpeechPlan, TranscribeTrackInput } from "../../pipeline/contracts/index.ts";
import type { Storage } from "../../pipeline/ports.ts";
import { runStep } from "../../pipeline/steps/index.ts";
import { createStepPorts } from "../../workers/step-ports.ts";

export const SLOW_TEXT =
  "good morning everyone and thank you for joining this planning meeting. " +
  "today we review the budget for next year, the travel costs, the training plan and the hiring schedule. " +
  "the travel costs were too high last year, so we want to cut them by a third and spend more on training. " +
  "we also need two more engineers before the summer, and a new plan for the office move in the autumn.";

/** `speechSeconds`: how much of the planned speech to keep (pocketsphinx here decodes ≈ 6 s of audio per s on an idle core, plus ≈ 0.3 s to load its model). */
export async function stageSlowTranscription(config: Config, storage: Storage, recordingId: string, speechSeconds = 2, namespace = "inprocess"): Promise<TranscribeTrackInput> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "slow-task-"));
  try {
    const wav = path.join(dir, "speech.wav");
    execFileSync("espeak-ng", ["-v", "en-us", "-s", "140", "-w", wav, SLOW_TEXT], { stdio: "ignore" });
    const key = `recordings/${recordingId}/tracks/0.wav`;
    await storage.putFile(key, wav);
    const deps = createStepPorts(config, { storage, log: pino({ level: "silent" }) });
    const scratch = (n: string): string => {
      const d = path.join(dir, n);
      mkdirSync(d, { recursive: true });
      return d;
    };
    const prepared = await runStep("prepare_track", { recording_id: recordingId, namespace, track: { track_index: 0, participant: "Alice", offset_seconds: 0, source_key: key } }, deps(scratch("prep")));
    const plan = (await runStep("plan_speech", { recording_id: recordingId, namespace, language: "en", expected_tracks: [0], prepared: [prepared] }, deps(scratch("plan")))) as SpeechPlan;
    const track = plan.tracks[0]!;
    const spans: typeof track.spans = [];
    let total = 0;
    for (const sp of track.spans) {
      if (total >= speechSeconds) break;
      const end = Math.min(sp.end, sp.start + (speechSeconds - total));
      spans.push({ ...sp, end });
      total += end - sp.start;
    }
    return { recording_id: recordingId, namespace, language: "en", track: { ...track, spans } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

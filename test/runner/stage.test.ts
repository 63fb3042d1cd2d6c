import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { FileManifest, PipelineInput } from "../../pipeline/contracts/index.ts";
import { ManifestFileError, safeFileName, stageManifest } from "../../workers/inprocess/stage.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "stage-"));
const storage = createLocalStorage(path.join(dir, "storage"));
before(() => {
  for (const [name, freq] of [["alice one.wav", 300], ["bob.mp3", 500]] as const) {
    execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", `sine=frequency=${freq}:duration=0.3`, "-ar", "16000", "-ac", "1", path.join(dir, name)]);
  }
  writeFileSync(path.join(dir, "empty.wav"), "");
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("staging copies every track under recordings/{id}/tracks and builds the pipeline input", async () => {
  const manifest = FileManifest.parse({
    language: "en",
    tracks: [
      { path: "alice one.wav", participant: "Alice", offset_seconds: 0 },
      { path: path.join(dir, "bob.mp3"), participant: "Bob", offset_seconds: 2.5 },
    ],
  });
  const input = await stageManifest(manifest, storage, "rec-42", dir, { namespace: "conductor" });
  assert.deepEqual(PipelineInput.parse(input), input);
  assert.equal(input.namespace, "conductor");
  assert.deepEqual(
    input.tracks.map((t) => [t.track_index, t.participant, t.offset_seconds, t.source_key]),
    [
      [0, "Alice", 0, "recordings/rec-42/tracks/0-alice_one.wav"],
      [1, "Bob", 2.5, "recordings/rec-42/tracks/1-bob.mp3"],
    ],
  );
  assert.deepEqual(await storage.get(input.tracks[0]!.source_key), readFileSync(path.join(dir, "alice one.wav")));
  assert.deepEqual(await storage.list("recordings/rec-42/"), input.tracks.map((t) => t.source_key));
});

test("a bad file anywhere in the manifest stops staging before anything is written", async () => {
  const manifest = FileManifest.parse({
    tracks: [
      { path: "alice one.wav", participant: "Alice" },
      { path: "empty.wav", participant: "Bob" },
    ],
  });
  await assert.rejects(stageManifest(manifest, storage, "rec-bad", dir), (err: unknown) => {
    assert.ok(err instanceof ManifestFileError);
    assert.deepEqual(err.problems, ["track 1 (Bob): empty.wav is empty (0 bytes)"]);
    return true;
  });
  assert.deepEqual(await storage.list("recordings/rec-bad/"), []);
});

test("the audio probe is consulted for every track, and its verdict is reported", async () => {
  const manifest = FileManifest.parse({ tracks: [{ path: "alice one.wav", participant: "Alice" }, { path: "bob.mp3", participant: "Bob" }] });
  const probed: string[] = [];
  const probe = async (f: string) => {
    probed.push(path.basename(f));
    return f.endsWith(".mp3") ? "contains no audio stream" : undefined;
  };
  await assert.rejects(stageManifest(manifest, storage, "rec-probe", dir, { probe }), /track 1 \(Bob\): bob\.mp3 contains no audio stream/);
  assert.deepEqual(probed.sort(), ["alice one.wav", "bob.mp3"]);
  assert.deepEqual(await storage.list("recordings/rec-probe/"), []);
});

test("safe file names keep letters, digits, dot, dash and underscore only", () => {
  assert.equal(safeFileName("../../etc/passwd"), "passwd");
  assert.equal(safeFileName("Ünïcode name (1).webm"), "n_code_name_1_.webm");
  assert.equal(safeFileName(".hidden"), "hidden");
  assert.equal(safeFileName("..."), "track");
});

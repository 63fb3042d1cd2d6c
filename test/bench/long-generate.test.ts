/**
 * The bench:long meeting generator: utterances carry the clips' own words, no two are the
 * same samples, each sits in its speaker's track at its time minus the track's offset,
 * leaks into the other tracks 26 dB down, and the WebM/Opus track decodes to the meeting's
 * length with its speaker's voice where the reference says.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { BLEED_DB, generateMeeting, LIBRIVOX, loadClips, render, type GeneratedMeeting } from "../../bench/long/generate.ts";
import { readWav } from "../../pipeline/audio/wav.ts";
import { tokens } from "../../pipeline/metrics/wer.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "ts-gen-"));
let m: GeneratedMeeting;
before(async () => {
  m = await generateMeeting(dir, { minutes: 1.5, tracks: 3, speech: 0.6, seed: 5 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const rms = (x: ArrayLike<number>, from: number, to: number): number => {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i]! ** 2;
  return Math.sqrt(s / Math.max(1, to - from));
};

test("the reference: the clips' own words, unique renditions, offsets within 2 s, about the asked-for speech", () => {
  const texts = new Map(
    readFileSync(path.join(LIBRIVOX, "transcription"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => [/\((.+)\)/.exec(l)![1]!, l.replace(/<\/?s>|\(.*\)/g, "").trim()]),
  );
  assert.ok(m.utterances.length >= 8, `${m.utterances.length} utterances`);
  for (const u of m.utterances) assert.deepEqual(tokens(u.text), tokens(texts.get(u.clip)!));
  const keys = m.utterances.map((u) => `${u.clip}/${u.rate}/${u.gain_db}`);
  assert.equal(new Set(keys).size, keys.length, "no two utterances are the same rendition");
  assert.ok(m.utterances.every((u) => u.rate >= 0.94 && u.rate <= 1.06 && u.gain_db <= 0 && u.gain_db >= -8));
  assert.ok(new Set(m.utterances.map((u) => u.track)).size === 3, "every track speaks");
  assert.equal(m.offsets[0], 0);
  assert.ok(m.offsets.every((o) => o >= 0 && o <= 2));
  const fraction = m.voicedSeconds / 90;
  assert.ok(fraction > 0.35 && fraction < 0.8, `voiced fraction ${fraction}`);
  const manifest = JSON.parse(readFileSync(m.manifestPath, "utf8")) as { tracks: { path: string; offset_seconds: number }[] };
  assert.deepEqual(manifest.tracks.map((t) => t.offset_seconds), m.offsets);
  assert.deepEqual(manifest.tracks.map((t) => path.extname(t.path)), [".wav", ".wav", ".webm"]);
});

test("each utterance is in its track at its time minus the offset, and in the other WAV tracks 26 dB down", () => {
  const clips = new Map(loadClips().map((c) => [c.id, c.samples]));
  const tracks = [0, 1].map((k) => readWav(readFileSync(path.join(dir, `track${k}.wav`))).samples);
  // utterances nobody else talks over, on a WAV track
  const alone = m.utterances.filter((u) => u.track < 2 && !m.utterances.some((v) => v !== u && v.start < u.end + 0.1 && v.end > u.start - 0.1));
  assert.ok(alone.length >= 2, `${alone.length} utterances alone`);
  for (const u of alone) {
    const own = tracks[u.track]!;
    const audio = render(clips.get(u.clip)!, u.rate, u.gain_db);
    const at = Math.round((u.start - m.offsets[u.track]!) * 16000);
    // the same samples, up to the rounding and the faint noise floor (±12)
    let worst = 0;
    for (let i = 0; i < audio.length; i++) worst = Math.max(worst, Math.abs(own[at + i]! - audio[i]!));
    assert.ok(worst <= 13.5, `utterance at ${u.start} on track ${u.track}: off by up to ${worst}`);
    const other = tracks[1 - u.track]!;
    const atOther = Math.round((u.start - m.offsets[1 - u.track]!) * 16000);
    const db = 20 * Math.log10(rms(other, atOther, atOther + audio.length) / rms(own, at, at + audio.length));
    assert.ok(Math.abs(db - BLEED_DB) < 1, `bleed at ${db.toFixed(1)} dB`);
  }
});

test("the WebM/Opus track decodes to the meeting's length with its speaker's voice where the reference says", () => {
  const wav = path.join(dir, "webm.wav");
  execFileSync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", path.join(dir, "track2.webm"), "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", wav]);
  const s = readWav(readFileSync(wav)).samples;
  assert.ok(Math.abs(s.length / 16000 - (90 - m.offsets[2]!)) < 0.1, `${s.length / 16000} s`);
  const mine = m.utterances.filter((u) => u.track === 2);
  assert.ok(mine.length > 0);
  for (const u of mine) {
    const a = Math.round((u.start - m.offsets[2]!) * 16000);
    const b = Math.round((u.end - m.offsets[2]!) * 16000);
    assert.ok(rms(s, a, b) > 300, `track 2 speaks at ${u.start} (rms ${rms(s, a, b).toFixed(0)})`);
  }
});

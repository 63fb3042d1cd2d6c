/** Builds timed word lists from plain sentences, for the NLP tests (no audio involved). */
import type { Word } from "../../pipeline/contracts/index.ts";

/**
 * Each sentence becomes one utterance: words 0.3 s apart, `pause` seconds of silence
 * between utterances, speakers taking turns in order of `speakers`.
 */
export function timedWords(sentences: readonly string[], opts: { speakers?: number[]; pause?: number; start?: number } = {}): Word[] {
  const speakers = opts.speakers ?? [0, 1];
  const pause = opts.pause ?? 1.0;
  let t = opts.start ?? 0;
  const words: Word[] = [];
  sentences.forEach((s, i) => {
    const speaker = speakers[i % speakers.length]!;
    for (const text of s.toLowerCase().replace(/[^a-z' ]/g, "").split(/\s+/).filter(Boolean)) {
      words.push({ text, start: round(t), end: round(t + 0.25), speaker });
      t += 0.3;
    }
    t += pause;
  });
  return words;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** Three meeting parts with clearly different vocabulary. */
export const BUDGET = [
  "Let us start with the budget for the next quarter",
  "The marketing budget is twenty percent over the plan",
  "We should cut the travel budget and the conference spending",
  "Finance wants the revised budget numbers by Friday",
  "The budget for cloud hosting also grew because of storage costs",
  "I will send the spreadsheet with the budget breakdown to finance",
  "Can we move some of the hosting costs into the research budget",
  "Finance says the quarterly budget review happens next week",
];
export const HIRING = [
  "Next item is hiring for the support team",
  "We interviewed four candidates for the support engineer position",
  "Two candidates did well in the technical interview",
  "The recruiter wants feedback on every candidate before the offer",
  "We should make an offer to the candidate with database experience",
  "The support team also needs a second engineer for the night shift",
  "Please write your interview notes in the hiring tracker",
  "The recruiter will schedule the final interviews with the candidates",
];
export const RELEASE = [
  "Last topic is the mobile release schedule",
  "The release candidate for the mobile app has three open bugs",
  "The crash on login blocks the release until the fix is tested",
  "Quality assurance will test the release build on older phones",
  "We can ship the mobile release on Tuesday if the bugs are fixed",
  "The app store review usually takes two days for a release",
  "Release notes for the mobile app need screenshots of the new screens",
  "After the release we monitor crash reports for the mobile app",
];

/**
 * The transcript in speaker turns. Clicking a word (or a turn's time, which is a button for
 * the keyboard) asks to seek there; the word under the playhead is highlighted. Only the
 * turn holding the active word re-renders as the audio plays.
 */
import { memo, useMemo } from "react";
import type { Participant, Word } from "../api/client";
import { activeWordIndex, clock, groupTurns, speakerColour, type Turn } from "../lib/transcript";

export interface TranscriptProps {
  words: readonly Word[];
  participants: readonly Participant[];
  /** the audio's current time, seconds */
  currentTime: number;
  onSeek(seconds: number): void;
}

export function Transcript({ words, participants, currentTime, onSeek }: TranscriptProps) {
  const turns = useMemo(() => groupTurns(words, participants), [words, participants]);
  const active = activeWordIndex(words, currentTime);
  if (!words.length) return <p className="muted">No words were recognised in this recording.</p>;
  return (
    <ol className="transcript" aria-label="Transcript">
      {turns.map((t) => (
        <TurnView key={t.first} turn={t} active={active >= t.first && active < t.first + t.words.length ? active : -1} onSeek={onSeek} />
      ))}
    </ol>
  );
}

const TurnView = memo(function TurnView({ turn, active, onSeek }: { turn: Turn; active: number; onSeek(s: number): void }) {
  const colour = speakerColour(turn.speaker);
  return (
    <li className="turn" style={{ borderColor: colour }} data-speaker={turn.speaker}>
      <div className="turn-head">
        <span className="speaker" style={{ color: colour }}>
          {turn.name}
        </span>
        <button type="button" className="link time" onClick={() => onSeek(turn.start)} aria-label={`Play from ${clock(turn.start)} (${turn.name})`}>
          {clock(turn.start)}
        </button>
      </div>
      <p className="words">
        {turn.words.map((w, i) => {
          const index = turn.first + i;
          return (
            <span key={index}>
              <span
                className={index === active ? "word active" : "word"}
                aria-current={index === active ? "true" : undefined}
                data-start={w.start}
                data-index={index}
                onClick={() => onSeek(w.start)}
              >
                {w.text}
              </span>{" "}
            </span>
          );
        })}
      </p>
    </li>
  );
});

import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Participant, Word } from "../api/client";
import { activeWordIndex, groupTurns } from "../lib/transcript";
import { Transcript } from "./Transcript";

const w = (text: string, start: number, end: number, speaker: number): Word => ({ text, start, end, speaker });
const participants: Participant[] = [
  { speaker: 0, name: "Alice" },
  { speaker: 1, name: "Bob" },
];
// Alice, Alice | Bob | Alice after a 3 s pause → a new turn
const words = [w("hello", 0.5, 0.9, 0), w("there", 1.0, 1.4, 0), w("hi", 1.6, 1.9, 1), w("alice", 2.0, 2.5, 1), w("again", 5.6, 6.0, 1), w("bye", 6.5, 7.0, 0)];

describe("groupTurns", () => {
  it("groups consecutive words of one speaker and splits at a pause of 2 s or more", () => {
    const turns = groupTurns(words, participants);
    expect(turns.map((t) => [t.name, t.words.map((x) => x.text).join(" ")])).toEqual([
      ["Alice", "hello there"],
      ["Bob", "hi alice"],
      ["Bob", "again"],
      ["Alice", "bye"],
    ]);
    expect(turns.map((t) => t.first)).toEqual([0, 2, 4, 5]);
  });
  it("names an unknown speaker by number", () => {
    expect(groupTurns([w("x", 0, 1, 4)], participants)[0]!.name).toBe("Speaker 5");
  });
});

describe("activeWordIndex", () => {
  it("is the word whose span holds the time, -1 in a pause", () => {
    expect(activeWordIndex(words, 0.1)).toBe(-1);
    expect(activeWordIndex(words, 0.5)).toBe(0);
    expect(activeWordIndex(words, 1.2)).toBe(1);
    expect(activeWordIndex(words, 1.45)).toBe(-1);
    expect(activeWordIndex(words, 6.9)).toBe(5);
    expect(activeWordIndex(words, 99)).toBe(-1);
  });
});

describe("<Transcript>", () => {
  it("shows turns with speaker names, seeks on a word click, highlights the word being spoken", () => {
    const onSeek = vi.fn();
    const { rerender, container } = render(<Transcript words={words} participants={participants} currentTime={0} onSeek={onSeek} />);
    const turns = container.querySelectorAll(".turn");
    expect(turns).toHaveLength(4);
    expect([...container.querySelectorAll(".speaker")].map((e) => e.textContent)).toEqual(["Alice", "Bob", "Bob", "Alice"]);
    expect(container.querySelector(".word.active")).toBeNull();

    fireEvent.click(screen.getByText("alice"));
    expect(onSeek).toHaveBeenCalledWith(2.0);

    rerender(<Transcript words={words} participants={participants} currentTime={2.1} onSeek={onSeek} />);
    const active = container.querySelectorAll(".word.active");
    expect(active).toHaveLength(1);
    expect(active[0]!.textContent).toBe("alice");
    expect(active[0]!.getAttribute("aria-current")).toBe("true");

    rerender(<Transcript words={words} participants={participants} currentTime={6.6} onSeek={onSeek} />);
    expect(container.querySelector(".word.active")!.textContent).toBe("bye");
  });

  it("seeks to a turn's start from its time button (keyboard)", () => {
    const onSeek = vi.fn();
    render(<Transcript words={words} participants={participants} currentTime={0} onSeek={onSeek} />);
    fireEvent.click(screen.getByRole("button", { name: /Play from 00:05 \(Bob\)/ }));
    expect(onSeek).toHaveBeenCalledWith(5.6);
  });

  it("says so when there are no words", () => {
    render(<Transcript words={[]} participants={participants} currentTime={0} onSeek={() => undefined} />);
    expect(screen.getByText(/No words were recognised/)).toBeTruthy();
  });
});

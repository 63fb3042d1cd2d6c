/**
 * Keeps the last N lines a child wrote (stdout and stderr), so a crash error can show
 * what the child said before it died. Long lines are cut; partial lines are kept until
 * their newline arrives or the stream ends.
 */
export class LogTail {
  private readonly lines: string[] = [];
  private readonly partial = new Map<"stdout" | "stderr", string>();

  constructor(
    private readonly maxLines = 30,
    private readonly maxLineChars = 1000,
    private readonly onLine?: (line: string, stream: "stdout" | "stderr") => void,
  ) {}

  /** Feed a chunk of output from `stream`. */
  push(stream: "stdout" | "stderr", chunk: Buffer | string): void {
    const text = (this.partial.get(stream) ?? "") + chunk.toString();
    const parts = text.split("\n");
    const rest = parts.pop() ?? "";
    for (const p of parts) this.add(stream, p.replace(/\r$/, ""));
    // a runaway line without newline must not grow forever
    this.partial.set(stream, rest.length > this.maxLineChars * 4 ? rest.slice(-this.maxLineChars * 4) : rest);
  }

  /** The stream ended: keep its last unterminated line. */
  end(stream: "stdout" | "stderr"): void {
    const rest = this.partial.get(stream);
    if (rest) this.add(stream, rest);
    this.partial.delete(stream);
  }

  private add(stream: "stdout" | "stderr", line: string): void {
    if (line === "") return;
    this.onLine?.(line, stream);
    const cut = line.length > this.maxLineChars ? `${line.slice(0, this.maxLineChars)}…` : line;
    this.lines.push(cut);
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
  }

  /** The last lines, oldest first, including unterminated ones. */
  tail(): string[] {
    const pending = [...this.partial.values()].filter(Boolean).map((l) => (l.length > this.maxLineChars ? `${l.slice(0, this.maxLineChars)}…` : l));
    return [...this.lines, ...pending].slice(-this.maxLines);
  }
}

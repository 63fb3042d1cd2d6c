import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import { fieldErrorsFromApi, participantFromFileName, perFileProgress, type Uploader } from "../lib/upload";
import { UploadForm } from "./UploadForm";

const audio = (name: string, bytes = 100): File => new File([new Uint8Array(bytes)], name, { type: "audio/wav" });

function pick(container: HTMLElement, files: File[]): void {
  const input = container.querySelector('input[type="file"]') as HTMLInputElement;
  fireEvent.change(input, { target: { files } });
}
const field = (container: HTMLElement, name: string) => container.querySelector(`input[name="${name}"]`) as HTMLInputElement;

describe("<UploadForm>", () => {
  it("names each track from its file name and sends the manifest in file order", async () => {
    const upload = vi.fn<Uploader>(async (_req, onProgress) => {
      onProgress(50, 300);
      return { id: "rec-1", status: "queued" as const };
    });
    const onCreated = vi.fn();
    const { container } = render(<UploadForm upload={upload} onCreated={onCreated} />);
    pick(container, [audio("alice.wav"), audio("bob_desk-mic.ogg")]);
    expect(field(container, "tracks.0.participant").value).toBe("Alice");
    expect(field(container, "tracks.1.participant").value).toBe("Bob desk mic");
    fireEvent.change(field(container, "tracks.1.offset_seconds"), { target: { value: "2.5" } });
    fireEvent.click(screen.getByRole("button", { name: "Upload and transcribe" }));
    await waitFor(() => expect(onCreated).toHaveBeenCalledWith({ id: "rec-1", status: "queued" }));
    const req = upload.mock.calls[0]![0];
    expect(req.language).toBe("en");
    expect(req.tracks.map((t) => [t.file.name, t.participant, t.offset_seconds])).toEqual([
      ["alice.wav", "Alice", 0],
      ["bob_desk-mic.ogg", "Bob desk mic", 2.5],
    ]);
  });

  it("refuses to send what is wrong, with the message next to the field", async () => {
    const upload = vi.fn<Uploader>();
    const { container } = render(<UploadForm upload={upload} onCreated={() => undefined} />);
    fireEvent.click(screen.getByRole("button", { name: "Upload and transcribe" }));
    expect(await screen.findByText("add at least one audio file")).toBeTruthy();
    pick(container, [audio("a.wav"), audio("b.wav")]);
    fireEvent.change(field(container, "tracks.1.participant"), { target: { value: "a" } });
    fireEvent.change(field(container, "tracks.0.offset_seconds"), { target: { value: "-1" } });
    fireEvent.change(field(container, "language"), { target: { value: "English" } });
    fireEvent.click(screen.getByRole("button", { name: "Upload and transcribe" }));
    expect(upload).not.toHaveBeenCalled();
    const p1 = field(container, "tracks.1.participant");
    expect(p1.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(p1.getAttribute("aria-describedby")!)!.textContent).toBe("the same name as track 1");
    const o0 = field(container, "tracks.0.offset_seconds");
    expect(document.getElementById(o0.getAttribute("aria-describedby")!)!.textContent).toBe("0 or more");
    expect(field(container, "language").getAttribute("aria-invalid")).toBe("true");
  });

  it("shows the API's refusal next to the field it names", async () => {
    const upload = vi.fn<Uploader>(async () => {
      throw new ApiError(400, "invalid_manifest", "manifest is invalid: tracks.1.participant: participant name contains control characters or angle brackets; language: language must be a code like 'en' or 'en-US'");
    });
    const { container } = render(<UploadForm upload={upload} onCreated={() => undefined} />);
    pick(container, [audio("a.wav"), audio("b.wav")]);
    fireEvent.click(screen.getByRole("button", { name: "Upload and transcribe" }));
    await screen.findByText("participant name contains control characters or angle brackets");
    const p1 = field(container, "tracks.1.participant");
    expect(document.getElementById(p1.getAttribute("aria-describedby")!)!.textContent).toMatch(/angle brackets/);
    expect(field(container, "tracks.0.participant").getAttribute("aria-invalid")).toBeNull();
    expect(screen.getByText("language must be a code like 'en' or 'en-US'")).toBeTruthy();
  });

  it("an error that names no field is shown for the whole form", async () => {
    const upload = vi.fn<Uploader>(async () => {
      throw new ApiError(503, "too_many_uploads", "4 uploads are streaming already; try again shortly");
    });
    const { container } = render(<UploadForm upload={upload} onCreated={() => undefined} />);
    pick(container, [audio("a.wav")]);
    fireEvent.click(screen.getByRole("button", { name: "Upload and transcribe" }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/uploads are streaming already/);
  });

  it("shows per-file progress and cancels the upload", async () => {
    let progress: ((sent: number, total: number) => void) | undefined;
    let aborted = false;
    const upload: Uploader = (_req, onProgress, signal) =>
      new Promise((_resolve, reject) => {
        progress = onProgress;
        signal.addEventListener("abort", () => {
          aborted = true;
          reject(new DOMException("cancelled", "AbortError"));
        });
      });
    const { container } = render(<UploadForm upload={upload} onCreated={() => undefined} />);
    pick(container, [audio("a.wav", 1000), audio("b.wav", 1000)]);
    fireEvent.click(screen.getByRole("button", { name: "Upload and transcribe" }));
    const bars = await screen.findAllByRole("progressbar");
    expect(bars).toHaveLength(2);
    act(() => progress!(1500, 2000));
    expect((screen.getByLabelText("Upload of a.wav") as HTMLProgressElement).value).toBe(1);
    const b = (screen.getByLabelText("Upload of b.wav") as HTMLProgressElement).value;
    expect(b).toBeGreaterThan(0);
    expect(b).toBeLessThan(1);
    fireEvent.click(screen.getByRole("button", { name: "Cancel upload" }));
    expect(await screen.findByText(/Upload cancelled/)).toBeTruthy();
    expect(aborted).toBe(true);
    expect(screen.queryAllByRole("progressbar")).toHaveLength(0);
  });
});

describe("upload helpers", () => {
  it("participantFromFileName", () => {
    expect(participantFromFileName("carol.webm")).toBe("Carol");
    expect(participantFromFileName("<x>.wav")).toBe("X");
    expect(participantFromFileName(".wav")).toBe("Speaker");
  });
  it("fieldErrorsFromApi places a late start on the track's offset", () => {
    expect(fieldErrorsFromApi(new ApiError(422, "recording_too_long", "track 2 (Carol) starts at 99999 s; …"))).toEqual({ "tracks.2.offset_seconds": "track 2 (Carol) starts at 99999 s; …" });
  });
  it("perFileProgress follows the body's order", () => {
    expect(perFileProgress([100, 100], 0, 230)).toEqual([0, 0]);
    expect(perFileProgress([100, 100], 230, 230)).toEqual([1, 1]);
  });
});

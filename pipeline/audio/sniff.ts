/**
 * What a file is, judged from its first bytes (never from its name or a client's
 * Content-Type): the API refuses what is not audio at upload, and the ffmpeg adapter pins
 * the demuxer to what it sniffed, so a playlist or concat file never reaches one of
 * ffmpeg's demuxers that follow references.
 */

export type AudioFormat = "wav" | "ogg" | "mp3" | "aac" | "flac" | "webm" | "m4a";

/** Bytes needed to decide (RIFF/WAVE and ftyp brands sit in the first 12). */
export const SNIFF_BYTES = 12;

/** ISO-BMFF brands of audio (and audio-bearing video) files; image brands (heic, avif…) are not. */
const FTYP_BRANDS = new Set(["M4A ", "M4B ", "M4P ", "mp41", "mp42", "mp71", "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "dash", "3gp4", "3gp5", "3gp6", "3g2a", "qt  ", "MSNV", "avc1", "M4V ", "f4a ", "f4v "]);

export function sniffAudio(head: Buffer): AudioFormat | undefined {
  const ascii = (from: number, to: number): string => head.subarray(from, to).toString("latin1");
  if (head.length >= 12 && (ascii(0, 4) === "RIFF" || ascii(0, 4) === "RF64" || ascii(0, 4) === "BW64") && ascii(8, 12) === "WAVE") return "wav";
  if (head.length >= 4 && ascii(0, 4) === "OggS") return "ogg";
  if (head.length >= 4 && ascii(0, 4) === "fLaC") return "flac";
  if (head.length >= 4 && head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return "webm";
  if (head.length >= 12 && ascii(4, 8) === "ftyp" && FTYP_BRANDS.has(ascii(8, 12))) return "m4a";
  if (head.length >= 3 && ascii(0, 3) === "ID3") return "mp3";
  if (head.length >= 3 && head[0] === 0xff && (head[1]! & 0xe0) === 0xe0) {
    const version = (head[1]! >> 3) & 0x3;
    const layer = (head[1]! >> 1) & 0x3;
    const bitrate = head[2]! >> 4;
    const rate = (head[2]! >> 2) & 0x3;
    // ADTS AAC: 12-bit sync, layer 00
    if ((head[1]! & 0xf6) === 0xf0) return "aac";
    if (version !== 1 && layer !== 0 && bitrate !== 0xf && rate !== 0x3) return "mp3";
  }
  return undefined;
}

export const describeFormats = "WAV, Ogg, MP3, AAC (ADTS), FLAC, WebM/Matroska or MP4/M4A";

/** The ffmpeg demuxer for each format we accept (`-f`): nothing else is ever probed. */
export const FFMPEG_DEMUXER: Record<AudioFormat, string> = {
  wav: "wav",
  ogg: "ogg",
  mp3: "mp3",
  aac: "aac",
  flac: "flac",
  webm: "matroska",
  m4a: "mov",
};

/**
 * The mixdown in an <audio> element with its waveform drawn from the peaks the pipeline
 * computed (GET …/waveform); the part already played is coloured. The waveform is a
 * slider: click to seek, or focus it and use the arrow keys (5 s), Home and End.
 */
import { useEffect, useRef, type KeyboardEvent, type MouseEvent, type RefObject } from "react";
import { clock } from "../lib/transcript";

export interface AudioPlayerProps {
  src: string;
  peaks: readonly number[] | null;
  duration: number;
  currentTime: number;
  audioRef: RefObject<HTMLAudioElement | null>;
  onTime(seconds: number): void;
  onSeek(seconds: number): void;
}

export function AudioPlayer({ src, peaks, duration, currentTime, audioRef, onTime, onSeek }: AudioPlayerProps) {
  const canvas = useRef<HTMLCanvasElement>(null);

  // while playing, follow the playhead every frame (timeupdate alone comes ~4 times a second)
  useEffect(() => {
    const a = audioRef.current;
    if (!a) return;
    let raf = 0;
    let last = -1;
    const tick = (): void => {
      if (Math.abs(a.currentTime - last) >= 0.04) {
        last = a.currentTime;
        onTime(last);
      }
      raf = requestAnimationFrame(tick);
    };
    const play = (): void => {
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(tick);
    };
    const stop = (): void => cancelAnimationFrame(raf);
    a.addEventListener("play", play);
    a.addEventListener("pause", stop);
    a.addEventListener("ended", stop);
    return () => {
      stop();
      a.removeEventListener("play", play);
      a.removeEventListener("pause", stop);
      a.removeEventListener("ended", stop);
    };
  }, [audioRef, onTime, src]);

  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext?.("2d");
    if (!c || !ctx || !peaks?.length) return;
    const width = c.clientWidth || 600;
    const height = c.clientHeight || 64;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const played = duration > 0 ? currentTime / duration : 0;
    const bars = Math.min(peaks.length, Math.floor(width / 2));
    const step = peaks.length / bars;
    for (let i = 0; i < bars; i++) {
      let peak = 0;
      for (let j = Math.floor(i * step); j < Math.floor((i + 1) * step); j++) peak = Math.max(peak, peaks[j] ?? 0);
      const h = Math.max(1, peak * (height - 4));
      ctx.fillStyle = i / bars < played ? "#2563eb" : "#94a3b8";
      ctx.fillRect(i * (width / bars), (height - h) / 2, Math.max(1, width / bars - 1), h);
    }
  }, [peaks, duration, currentTime]);

  const seekAt = (e: MouseEvent<HTMLCanvasElement>): void => {
    const r = e.currentTarget.getBoundingClientRect();
    if (r.width > 0) onSeek(((e.clientX - r.left) / r.width) * duration);
  };
  const onKey = (e: KeyboardEvent): void => {
    const to = { ArrowLeft: currentTime - 5, ArrowRight: currentTime + 5, Home: 0, End: duration }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    onSeek(Math.min(duration, Math.max(0, to)));
  };

  return (
    <div className="player">
      {peaks?.length ? (
        <canvas
          ref={canvas}
          className="waveform"
          role="slider"
          tabIndex={0}
          aria-label="Waveform: seek in the recording"
          aria-valuemin={0}
          aria-valuemax={Math.round(duration)}
          aria-valuenow={Math.round(currentTime)}
          aria-valuetext={`${clock(currentTime)} of ${clock(duration)}`}
          onClick={seekAt}
          onKeyDown={onKey}
        />
      ) : null}
      <audio
        ref={audioRef}
        src={src}
        controls
        preload="metadata"
        aria-label="Recording audio"
        onTimeUpdate={(e) => onTime(e.currentTarget.currentTime)}
        onSeeked={(e) => onTime(e.currentTarget.currentTime)}
      />
    </div>
  );
}

// What a finished export came out as, in one line: "0:30 · 640×360 · 30 fps · 12 MB".
import type { Job } from "./jobs";

export function describeOutput(output: Job["output"]): string {
  if (!output) return "";
  const parts: string[] = [];
  if (output.durationSeconds != null) parts.push(clock(output.durationSeconds));
  if (output.width != null && output.height != null) parts.push(`${output.width}×${output.height}`);
  if (output.frameRate != null) parts.push(`${Math.round(output.frameRate * 100) / 100} fps`);
  if (output.sizeBytes != null) parts.push(size(output.sizeBytes));
  return parts.join(" · ");
}

function clock(seconds: number): string {
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function size(bytes: number): string {
  if (bytes < 1_000_000) return `${Math.max(1, Math.round(bytes / 1000))} kB`;
  return `${Math.round(bytes / 100_000) / 10} MB`;
}

// Where a waiting export stands and when it should be done, in words: "2nd in line",
// "about 40 s left" (the interval on hover). Recomputed each second from the ETA's
// instants, so the countdown moves between the server's pushes.
import type { Job } from "./jobs";

type Eta = NonNullable<Job["eta"]>;

export function placeInLine(job: Job): string {
  if (job.queuePosition == null) return "";
  const place = ordinal(job.queuePosition);
  return job.queuePositionIsLowerBound
    ? `${place} or later in line (others share the endpoint)`
    : `${place} in line`;
}

/** The countdown, and the interval for its tooltip; empty when there is no ETA. */
export function timeLeft(eta: Eta | null | undefined, now: number): [string, string] {
  if (!eta) return ["", ""];
  const done = Date.parse(eta.completesAt) - now;
  const low = Date.parse(eta.completesAtLow) - now;
  const high = Date.parse(eta.completesAtHigh) - now;
  const range = `between ${duration(low)} and ${duration(high)} left`;
  const left = done > 0 ? `about ${duration(done)} left` : "any moment now";
  if (eta.startsAt) {
    const start = Date.parse(eta.startsAt) - now;
    const starts = start > 0 ? `starts in about ${duration(start)}` : "starts any moment";
    return [`${starts}, ${left}`, range];
  }
  return [left, range];
}

function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}

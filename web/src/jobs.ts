// The user's jobs as the panel knows them: the first page of the `exportJobs` query,
// kept current by every change the `exportJobs` subscription delivers.
import type { CombinedError } from "@urql/core";
import type { UserError } from "./errors";
import type { JobFieldsFragment } from "./generated/graphql";

export type Job = JobFieldsFragment;

/** What the start, cancel and retry mutations answer, under the name `field`. */
export interface JobMutationResult<Field extends string> {
  data?: Record<Field, { job?: Job | null; userErrors: UserError[] }>;
  error?: CombinedError;
}

const FINAL = new Set<Job["status"]>(["COMPLETE", "ERROR", "CANCELLED"]);

export const isFinal = (job: Job): boolean => FINAL.has(job.status);
export const canCancel = (job: Job): boolean => !isFinal(job);
export const canRetry = (job: Job): boolean => job.status === "ERROR" || job.status === "CANCELLED";

export class JobList {
  private readonly jobs = new Map<string, Job>();

  /** Keeps the newer of two states of a job (the query and the subscription may
   * race); returns whether `job` was news. */
  upsert(job: Job): boolean {
    const known = this.jobs.get(job.id);
    if (known && known.updatedAt > job.updatedAt) return false;
    this.jobs.set(job.id, job);
    return true;
  }

  /** Newest first, like the `exportJobs` query. */
  newestFirst(): Job[] {
    return [...this.jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }
}

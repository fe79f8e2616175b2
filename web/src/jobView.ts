// One row per job: status, a live progress bar, the message, errors, the finished video.
import { h, showMessages } from "./dom";
import { canCancel, canRetry, type Job } from "./jobs";
import { describeOutput } from "./output";
import { placeInLine, timeLeft } from "./waiting";

export interface JobActions {
  cancel(job: Job): Promise<string[]>;
  retry(job: Job): Promise<string[]>;
}

const KIND_NAMES: Record<Job["kind"], string> = {
  FRAMING: "Framing",
  OVERLAY: "Overlay",
  ANNOTATE: "Annotate",
};

export class JobRow {
  readonly element: HTMLLIElement;
  private readonly status = h("span", { class: "status" });
  private readonly bar = h("progress", { max: 100, value: 0 });
  private readonly percent = h("span", { class: "percent" });
  private readonly message = h("p", { class: "message" });
  private readonly place = h("span", { class: "place" });
  private readonly eta = h("span", { class: "eta" });
  private readonly error = h("p", { class: "error" });
  private readonly cancel = h("button", { type: "button", "data-action": "cancel" }, "Cancel");
  private readonly retry = h("button", { type: "button", "data-action": "retry" }, "Retry");
  private readonly problems = h("ul", { class: "errors", role: "alert" });
  private readonly player = h("div", { class: "player" });
  private job: Job;

  constructor(job: Job, actions: JobActions) {
    this.job = job;
    const created = new Date(job.createdAt).toLocaleTimeString();
    this.element = h(
      "li",
      { class: "job", "data-job-id": job.id, "data-kind": job.kind },
      h(
        "div",
        { class: "head" },
        h("strong", {}, KIND_NAMES[job.kind]),
        this.status,
        h("time", { datetime: job.createdAt }, created),
      ),
      h("div", { class: "progress" }, this.bar, this.percent),
      this.message,
      h("p", { class: "waiting" }, this.place, this.eta),
      this.error,
      h("div", { class: "actions" }, this.cancel, this.retry),
      this.problems,
      this.player,
    );
    this.cancel.addEventListener("click", () => void this.act(actions.cancel));
    this.retry.addEventListener("click", () => void this.act(actions.retry));
    this.update(job);
  }

  update(job: Job): void {
    this.job = job;
    this.element.dataset["status"] = job.status;
    this.status.textContent = job.status;
    this.bar.value = job.progress;
    this.bar.setAttribute("aria-label", `${KIND_NAMES[job.kind]} export progress`);
    this.percent.textContent = `${job.progress} %`;
    this.message.textContent = job.message ?? "";
    this.place.textContent = placeInLine(job);
    this.tick(Date.now());
    this.error.textContent = job.error ?? "";
    this.cancel.hidden = !canCancel(job);
    this.retry.hidden = !canRetry(job);
    if (job.downloadUrl && !this.player.firstChild) {
      // Set once: a later update must not restart a video being watched.
      this.player.append(
        h("video", {
          controls: true,
          preload: "metadata",
          src: job.downloadUrl,
          poster: job.output?.posterUrl ?? undefined,
        }),
        h("p", { class: "output" }, describeOutput(job.output)),
        h("a", { href: job.downloadUrl, download: "" }, "Download MP4"),
      );
    }
  }

  /** Moves the countdown on; called each second. */
  tick(now: number): void {
    const [left, range] = timeLeft(this.job.eta, now);
    this.eta.textContent = left;
    this.eta.title = range;
  }

  private async act(action: (job: Job) => Promise<string[]>): Promise<void> {
    this.cancel.disabled = this.retry.disabled = true;
    showMessages(this.problems, await action(this.job));
    this.cancel.disabled = this.retry.disabled = false;
  }
}

/** The list, newest first; rows are kept and updated in place. */
export class JobListView {
  readonly element = h("ol", { class: "jobs" });
  private readonly rows = new Map<string, JobRow>();

  constructor(private readonly actions: JobActions) {
    setInterval(() => {
      const now = Date.now();
      for (const row of this.rows.values()) row.tick(now);
    }, 1000);
  }

  render(jobs: readonly Job[]): void {
    const rows = jobs.map((job) => {
      let row = this.rows.get(job.id);
      if (row) row.update(job);
      else this.rows.set(job.id, (row = new JobRow(job, this.actions)));
      return row.element;
    });
    rows.forEach((element, index) => {
      if (this.element.children[index] !== element) {
        this.element.insertBefore(element, this.element.children[index] ?? null);
      }
    });
  }
}

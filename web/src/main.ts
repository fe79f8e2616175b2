// The export panel: sign in if the server asks for a token, then start exports and
// watch every job of the user live.
import type { Client } from "@urql/core";
import { h, showMessages } from "./dom";
import { describeError, describeUserError, needsToken } from "./errors";
import { JobList, type Job, type JobMutationResult } from "./jobs";
import { JobListView } from "./jobView";
import {
  AssetsQuery,
  CancelMutation,
  JobChangesSubscription,
  JobsQuery,
  RetryMutation,
} from "./operations";
import { startForms } from "./startForms";
import { connect, type Transport } from "./transport";

const TOKEN_KEY = "export-gql.token";
const JOBS_SHOWN = 50;

const app = document.getElementById("app") as HTMLElement;
const banner = document.getElementById("banner") as HTMLUListElement;
const transportLabel = document.getElementById("transport") as HTMLElement;

async function main(): Promise<void> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const api = await connect(token);
  const assets = await api.client.query(AssetsQuery, {}).toPromise();
  if (needsToken(assets.error)) {
    api.close();
    askForToken(token !== null);
    return;
  }
  if (assets.error || !assets.data) {
    showMessages(banner, assets.error ? describeError(assets.error) : ["No answer from the API"]);
    return;
  }
  showTransport(api.transport, token !== null);

  const jobs = new JobList();
  const list = new JobListView({
    cancel: async (job) =>
      outcome(
        await api.client.mutation(CancelMutation, { id: job.id }).toPromise(),
        "cancelExport",
      ),
    retry: async (job) =>
      outcome(await api.client.mutation(RetryMutation, { id: job.id }).toPromise(), "retryExport"),
  });
  const changed = (...updates: Job[]): void => {
    if (updates.map((job) => jobs.upsert(job)).some(Boolean)) list.render(jobs.newestFirst());
  };
  /** Shows the job a cancel or retry answered with; returns what to tell the user. */
  function outcome<Field extends string>(result: JobMutationResult<Field>, field: Field): string[] {
    if (result.error) return describeError(result.error);
    const payload = result.data?.[field];
    if (payload?.job) changed(payload.job);
    return payload?.userErrors.map(describeUserError) ?? [];
  }

  app.replaceChildren(
    startForms(api.client, assets.data, (job) => changed(job)),
    h("section", { class: "list" }, h("h2", {}, "Your exports"), list.element),
  );
  await reload(api.client, changed);
}

/** How long to wait before subscribing again after the stream failed. */
const RESUBSCRIBE_MS = 2000;
const STALE_CURSOR = new Set(["BAD_CURSOR", "UNKNOWN_CURSOR"]);

/** Keeps the list live. When the stream fails (an SSE response cut, a websocket that
 * gave up), it subscribes again from the last cursor received, so nothing is missed;
 * when the server no longer knows that cursor, it re-reads the list instead. */
function watchJobs(client: Client, changed: (...jobs: Job[]) => void, since: string | null): void {
  let cursor = since;
  const { unsubscribe } = client
    .subscription(JobChangesSubscription, { since: cursor })
    .subscribe((result) => {
      if (result.data) {
        cursor = result.data.exportJobs.changeCursor;
        changed(result.data.exportJobs);
      }
      if (!result.error) return;
      unsubscribe();
      const codes = result.error.graphQLErrors.map((error) => error.extensions["code"]);
      if (codes.some((code) => STALE_CURSOR.has(String(code)))) {
        setTimeout(() => void reload(client, changed), RESUBSCRIBE_MS);
        return;
      }
      showMessages(banner, describeError(result.error));
      setTimeout(() => watchJobs(client, changed, cursor), RESUBSCRIBE_MS);
    });
}

/** Subscribes before reading the list, so that no change falls in between. */
async function reload(client: Client, changed: (...jobs: Job[]) => void): Promise<void> {
  watchJobs(client, changed, null);
  const page = await client.query(JobsQuery, { first: JOBS_SHOWN }).toPromise();
  if (page.error) showMessages(banner, describeError(page.error));
  changed(...(page.data?.exportJobs.edges.map((edge) => edge.node) ?? []));
}

function showTransport(transport: Transport, signedIn: boolean): void {
  transportLabel.dataset["transport"] = transport;
  transportLabel.textContent =
    transport === "websocket"
      ? "Live updates over a websocket"
      : "Live updates over SSE (websockets are blocked)";
  if (signedIn) {
    const signOut = h("button", { type: "button" }, "Sign out");
    signOut.addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      location.reload();
    });
    transportLabel.after(signOut);
  }
}

function askForToken(refused: boolean): void {
  const token = h("textarea", { name: "token", rows: 4, required: true, spellcheck: false });
  const form = h(
    "form",
    { class: "token" },
    h("h2", {}, "Sign in"),
    h(
      "p",
      {},
      "This server needs a bearer token: your identity provider's, or one from ",
      h("code", {}, "export-gql token USER"),
      ".",
    ),
    token,
    h("button", { type: "submit" }, "Use this token"),
    h(
      "ul",
      { class: "errors", role: "alert" },
      refused && h("li", {}, "The server refused that token."),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, token.value.trim());
    location.reload();
  });
  app.replaceChildren(form);
}

void main();

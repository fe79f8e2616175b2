// One form per export kind: pick the project or game, adjust the input, start.
import type { Client } from "@urql/core";
import { h, showMessages } from "./dom";
import { describeError, describeUserError } from "./errors";
import type {
  AnnotateExportInput,
  AssetsQuery,
  FramingExportInput,
  HighlightEffect,
  OverlayExportInput,
} from "./generated/graphql";
import type { Job, JobMutationResult } from "./jobs";
import { StartAnnotateMutation, StartFramingMutation, StartOverlayMutation } from "./operations";
import { annotateInput, framingInput, overlayInput } from "./presets";

interface KindForm {
  kind: Job["kind"];
  title: string;
  about: string;
  targets: "projects" | "games";
  preset(targetId: number, effect: HighlightEffect): unknown;
  /** `input` is what the user typed; the server validates it (see userErrors). */
  start(client: Client, input: unknown): Promise<JobMutationResult<"startExport">>;
}

const EFFECTS: HighlightEffect[] = ["DARK_OVERLAY", "BRIGHTNESS_BOOST", "ORIGINAL"];

const KINDS: KindForm[] = [
  {
    kind: "FRAMING",
    title: "Framing",
    about: "Crop and zoom the project's source clip; the result becomes its working video.",
    targets: "projects",
    preset: (id) => framingInput(id),
    start: (client, input) =>
      client.mutation(StartFramingMutation, { input: input as FramingExportInput }).toPromise(),
  },
  {
    kind: "OVERLAY",
    title: "Overlay",
    about: "Highlight a moving player on the project's newest working video.",
    targets: "projects",
    preset: (id, effect) => overlayInput(id, effect),
    start: (client, input) =>
      client.mutation(StartOverlayMutation, { input: input as OverlayExportInput }).toPromise(),
  },
  {
    kind: "ANNOTATE",
    title: "Annotate",
    about: "Compile named, rated clips of the game into one captioned video.",
    targets: "games",
    preset: (id) => annotateInput(id),
    start: (client, input) =>
      client.mutation(StartAnnotateMutation, { input: input as AnnotateExportInput }).toPromise(),
  },
];

export function startForms(
  client: Client,
  assets: AssetsQuery,
  onStarted: (job: Job) => void,
): HTMLElement {
  return h(
    "section",
    { class: "start" },
    ...KINDS.map((kind) => startForm(client, assets, kind, onStarted)),
  );
}

function startForm(
  client: Client,
  assets: AssetsQuery,
  kind: KindForm,
  onStarted: (job: Job) => void,
): HTMLFormElement {
  const targets = assets[kind.targets];
  const target = h(
    "select",
    { name: "target" },
    ...targets.map((t) => h("option", { value: t.id }, `${t.name} (#${t.id})`)),
  );
  const effect = h(
    "select",
    { name: "effect" },
    ...EFFECTS.map((e) => h("option", { value: e }, e)),
  );
  const input = h("textarea", { name: "input", rows: 14, spellcheck: false });
  const submit = h(
    "button",
    { type: "submit", disabled: targets.length === 0 },
    `Start ${kind.title.toLowerCase()} export`,
  );
  const problems = h("ul", { class: "errors", role: "alert" });
  const refill = (): void => {
    input.value = JSON.stringify(
      kind.preset(Number(target.value), effect.value as HighlightEffect),
      null,
      2,
    );
  };
  target.addEventListener("change", refill);
  effect.addEventListener("change", refill);
  refill();

  const form = h(
    "form",
    { class: "export", "data-kind": kind.kind },
    h("h2", {}, kind.title),
    h("p", {}, kind.about),
    targets.length
      ? h("label", {}, kind.targets === "projects" ? "Project " : "Game ", target)
      : h("p", { class: "hint" }, `No ${kind.targets} yet: run export-gql seed-demo.`),
    kind.kind === "OVERLAY" && h("label", {}, "Effect ", effect),
    h("details", {}, h("summary", {}, "Input"), input),
    submit,
    problems,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    let parsed: unknown;
    try {
      parsed = JSON.parse(input.value);
    } catch (error) {
      showMessages(problems, [`The input is not JSON: ${(error as Error).message}`]);
      return;
    }
    submit.disabled = true;
    void kind.start(client, parsed).then((result) => {
      submit.disabled = false;
      const payload = result.data?.startExport;
      if (result.error) showMessages(problems, describeError(result.error));
      else if (payload?.userErrors.length)
        showMessages(problems, payload.userErrors.map(describeUserError));
      else showMessages(problems, []);
      if (payload?.job) {
        form.dataset["lastJob"] = payload.job.id;
        onStarted(payload.job);
      }
    });
  });
  return form;
}

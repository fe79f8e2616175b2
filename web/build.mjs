// Bundles src/ into the Python package (gql/web/), where `export-gql serve` serves it.
import { copyFile, mkdir } from "node:fs/promises";
import { build } from "esbuild";

const out = new URL("../gql/web/", import.meta.url);
await mkdir(out, { recursive: true });
await build({
  entryPoints: ["src/main.ts"],
  outfile: new URL("panel.js", out).pathname,
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  legalComments: "none",
  logLevel: "warning",
});
for (const file of ["index.html", "panel.css"]) {
  await copyFile(new URL(`src/${file}`, import.meta.url), new URL(file, out));
}

// Runs graphql-http's server audits (the GraphQL-over-HTTP specification's
// conformance suite) against a running server and prints one JSON line:
// {"ok": N, "notice": N, "warn": N, "error": N, "failures": [{id, name, status, reason}]}.
//
//   node test/audit.mjs URL [TOKEN]
import { auditServer } from "graphql-http";

const [url, token] = process.argv.slice(2);
const fetchFn = (input, init = {}) =>
  fetch(input, {
    ...init,
    headers: {
      ...Object.fromEntries(new Headers(init.headers)),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
  });

const results = await auditServer({ url, fetchFn });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
const failures = [];
for (const result of results) {
  counts[result.status] += 1;
  if (result.status !== "ok") {
    const { id, name, status, reason } = result;
    failures.push({ id, name, status, reason });
  }
}
console.log(JSON.stringify({ ...counts, failures }));

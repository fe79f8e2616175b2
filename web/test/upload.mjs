// POSTs a body of N megabytes to a URL with Node's fetch (which sends the whole
// body before reading the response) and prints one JSON line: {"status", "body"},
// or {"error"} when no response arrived.
//
//   node test/upload.mjs URL MEGABYTES
const [url, megabytes] = process.argv.slice(2);
const body = new Uint8Array(Number(megabytes) * 1024 * 1024).fill(32);
try {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  console.log(JSON.stringify({ status: response.status, body: await response.json() }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.cause ?? error) }));
  process.exitCode = 1;
}

// Request bodies around the host's write buffers, through the component in
// Node.js (jco's preview2-shim is a different wasi:http host than wasmtime):
// each create must arrive whole and read back the same.
//
//   node payloads.mjs      (same environment as main.mjs; test.sh runs it)
const { connection, webApi } = await import("./generated/dataverse.js");

const head = '{"name":"Node sweep","description":"';
const tail = '"}';
const client = webApi.Client.connect(connection.parse(process.env.DATAVERSE_CONNECTION), {});
for (const size of [4095, 4096, 4097, 64 * 1024, 1024 * 1024]) {
  const body = head + "x".repeat(size - head.length - tail.length) + tail;
  const started = performance.now();
  const created = client.create("accounts", body, undefined);
  const row = JSON.parse(client.retrieve({ entitySet: "accounts", key: created.id }, ["description"], undefined, undefined).json);
  const ms = (performance.now() - started).toFixed(1);
  if (row.description.length !== size - head.length - tail.length) {
    console.error(`create of ${size} bytes: stored ${row.description.length} characters`);
    process.exit(1);
  }
  console.log(`create ${size} bytes: ok in ${ms} ms`);
}

// WhoAmI and a query through the dataverse-wasm component, in Node.js.
//
//   export DATAVERSE_CONNECTION='AuthType=ClientSecret;Url=https://yourorg.crm.dynamics.com/;ClientId=…;ClientSecret=…'
//   node main.mjs
//
// Run `node transpile.mjs` first: it writes ./generated.
import { readFileSync } from "node:fs";

// The exit codes of every front end (the CLI, this example, the README).
const EXIT_CODES = JSON.parse(readFileSync(new URL("../../docs/exit-codes.json", import.meta.url), "utf8"));
const code = (name) => EXIT_CODES.find((row) => row.name === name).code;

const connectionString = process.env.DATAVERSE_CONNECTION;
if (!connectionString) fail(code("usage"), "DATAVERSE_CONNECTION is not set (a ServiceClient connection string)");

const { connection, webApi } = await import("./generated/dataverse.js").catch((e) =>
  fail(code("host"), `cannot load ./generated/dataverse.js (run \`node transpile.mjs\` first): ${e.message}`),
);

try {
  // Both throw on a result's error case; the WIT `error` record is `e.payload`.
  const settings = connection.parse(connectionString);
  const client = webApi.Client.connect(settings, {});

  const me = client.whoAmI();
  console.log(`UserId:           ${me.userId}`);
  console.log(`BusinessUnitId:   ${me.businessUnitId}`);
  console.log(`OrganizationId:   ${me.organizationId}`);

  const page = client.retrieveMultiple({ entitySet: "accounts", select: ["name"], top: 3, count: false });
  for (const row of JSON.parse(page.rows)) console.log(`account: ${row.name}`);
} catch (e) {
  if (!e.payload) throw e;
  fail(exitCode(e.payload.kind.tag), describe(e.payload));
}

/** One line for a WIT `error`; its cases never carry a secret or a token. */
function describe({ kind: { tag, val }, call }) {
  let text;
  if (typeof val === "string") text = val;
  else if (tag === "authentication") text = `${val.description} (${val.error})`;
  else {
    const failure = tag === "throttled" ? val.failure : val;
    text = [`HTTP ${failure.status}`, failure.code, failure.message].filter(Boolean).join(" ");
  }
  const hint = val?.hint ?? val?.failure?.hint;
  const id = call ? ` [x-ms-client-request-id ${call.clientRequestId}, ${call.attempts} attempt(s)]` : "";
  return `${tag}: ${text}${hint ? ` — ${hint}` : ""}${id}`;
}

/** The exit code of a WIT `error-kind` case, from docs/exit-codes.json. */
function exitCode(tag) {
  return (EXIT_CODES.find((row) => row.kinds.includes(tag)) ?? { code: code("host") }).code;
}

function fail(code, message) {
  console.error(`error: ${message}`);
  process.exit(code);
}

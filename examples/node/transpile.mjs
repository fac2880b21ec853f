// Transpiles the dataverse-wasm component into ./generated (ES module + core
// wasm) with jco; main.mjs imports the result.
//
//   node transpile.mjs [component.wasm]
//
// The component is the argument, else $DATAVERSE_COMPONENT, else the one the
// repo's build (`cargo build` / `cargo test`) leaves in target/wasm.
import { transpile } from "@bytecodealliance/jco";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const component =
  process.argv[2] ??
  process.env.DATAVERSE_COMPONENT ??
  join(here, "../../target/wasm/wasm32-wasip2/release/dataverse_client.wasm");
const outDir = join(here, "generated");

const { files } = await transpile(await readFile(component), { name: "dataverse" });
await rm(outDir, { recursive: true, force: true });
for (const [name, bytes] of Object.entries(files)) {
  await mkdir(dirname(join(outDir, name)), { recursive: true });
  await writeFile(join(outDir, name), bytes);
}
console.log(`transpiled ${component} -> ${outDir}`);

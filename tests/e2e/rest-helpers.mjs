// Shared by rest.test.mjs and rest-backend.test.mjs: where the "your own REST API" example lives
// (www/examples/rest-backend/), and compiling its transport.ts with the repository's TypeScript.

import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT } from "./helpers.mjs";

export const EXAMPLE_DIR = path.join(REPO_ROOT, "www", "examples", "rest-backend");
const TSC = path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");

/**
 * Type-checks and compiles transport.ts into `outDir` (transport.js), `import ... from "wharf"`
 * resolved for the type check to `wharfTypes` (a .d.ts: the built package's, or a stand-in).
 * @returns {Promise<string>} the path of transport.js
 */
export async function compileTransport(outDir, wharfTypes) {
  const tsconfig = path.join(outDir, "tsconfig.json");
  const compilerOptions = {
    target: "ES2022",
    module: "ES2022",
    moduleResolution: "bundler",
    lib: ["ES2022", "DOM"],
    types: [],
    strict: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    skipLibCheck: true,
    rootDir: EXAMPLE_DIR,
    outDir,
    paths: { wharf: [wharfTypes] },
  };
  await writeFile(tsconfig, JSON.stringify({ compilerOptions, files: [path.join(EXAMPLE_DIR, "transport.ts")] }, null, 2));
  const result = spawnSync(process.execPath, [TSC, "-p", tsconfig], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`tsc -p ${tsconfig} failed:\n${result.stdout}${result.stderr}`);
  return path.join(outDir, "transport.js");
}

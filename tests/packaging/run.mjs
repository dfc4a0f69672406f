// Packaging test: proves that what `npm pack` makes of pkg/ works for a user who installs it.
// It exists because the e2e tests load pkg/ straight from /pkg, which says nothing about the
// tarball's file list, about bundlers, or about the .wasm being found once an app is built.
//   1. npm pack pkg/ into target/packaging/ (tarball name and size printed);
//   2. the tarball's files equal pkg/'s, every module the entry imports is in it, and the sizes of
//      its JavaScript + wasm (raw / gzip -9 / brotli 11) are printed and checked against
//      wasm-pack.toml [budget];
//   2b. the source maps of the shipped JavaScript (tests/packaging/sourcemaps.mjs): each file links
//      its .js.map, which is in the tarball, valid, embeds its sources' texts and maps positions
//      back to the repository's original files and lines;
//   3. publint --strict and "are the types wrong" (attw) on the tarball, offline (root devDependencies);
//   4. fresh copies of the fixture apps tests/packaging/vite-app (Vite, no config, no plugin) and
//      tests/packaging/webpack-app (webpack 5, no config file, no plugin) install their pinned
//      devDependencies from the committed lockfile (npm ci) and then the tarball (npm install
//      --no-save), build, and must emit the package's .wasm as an asset;
//   5. each built dist/ is served by the reference server (target/debug/wharf-server) and loaded in
//      headless Chromium: the page writes a note and syncs it, then a service worker that the
//      bundler built from a file importing "wharf" opens a database of its own, writes and pushes
//      one more (Vite's must run as a module service worker; webpack turns its into a classic one
//      by default). The server's /debug/state must hold each note once (version 1); no page errors;
//   6. a fresh vitest project (tests/packaging/vitest-app, no config) installs its lockfile and the
//      tarball the same way, gets README.md's "Tests in Node (vitest)" example written in, and runs
//      both tests of app code in Node ("node" export condition, IndexedDB from fake-indexeddb):
//      writes, reads, live queries, sync through a transport stub and, over HTTP, through the
//      reference server; every test must pass (none skipped) and the server must hold the pushed
//      record once.
// Usage: node tests/packaging/run.mjs   (needs pkg/ built by node scripts/build.mjs,
// target/debug/wharf-server by cargo build -p wharf-server, and the root devDependencies by npm ci;
// npm's cache in ~/.npm makes reruns fast)
// Exit code 0 when every check passed, 1 otherwise.

import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { parse as parseToml } from "smol-toml";
import { CHROMIUM_PATH, REPO_ROOT, collectPageErrors, eventually, launchBrowser } from "../e2e/helpers.mjs";
import { SERVER_BIN, startSyncServer } from "../e2e/sync-server.mjs";
import { checkSourceMaps } from "./sourcemaps.mjs";

const PKG = path.join(REPO_ROOT, "pkg");
const OUT = path.join(REPO_ROOT, "target", "packaging");
const unpacked = path.join(OUT, "unpacked", "package"); // the tarball, extracted
const FIXTURES = path.dirname(fileURLToPath(import.meta.url));
/** A hung npm or bundler fails its step instead of the whole run hanging. */
const COMMAND_TIMEOUT_MS = 5 * 60_000;
const rel = (p) => path.relative(REPO_ROOT, p) || ".";
const started = Date.now();
const timings = [];
const failures = [];

class Failure extends Error {}
const check = (condition, message) => {
  if (!condition) throw new Failure(message);
};

/** Runs one step, printing its title and duration; a failing step is recorded, later ones still run unless `fatal`. */
async function step(title, fn, { fatal = false } = {}) {
  console.log(`\n==> ${title}  [${((Date.now() - started) / 1000).toFixed(1)}s]`);
  const t0 = Date.now();
  try {
    const value = await fn();
    timings.push([title, Date.now() - t0, "ok"]);
    return value;
  } catch (error) {
    timings.push([title, Date.now() - t0, "FAILED"]);
    failures.push(`${title}: ${error instanceof Failure ? error.message : error?.stack ?? error}`);
    console.error(`FAILED: ${error instanceof Failure ? error.message : error?.stack ?? error}`);
    if (fatal) finish();
    return undefined;
  }
}

function finish() {
  console.log("\n==> timings");
  for (const [title, ms, status] of timings) console.log(`${(ms / 1000).toFixed(1).padStart(6)}s  ${status.padEnd(6)}  ${title}`);
  console.log(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s  total`);
  if (failures.length) {
    console.error(`\npackaging: FAILED (${failures.length}):\n${failures.map((f) => `  - ${f}`).join("\n")}`);
    process.exit(1);
  }
  console.log("\npackaging: all checks passed");
  process.exit(0);
}

/** Runs a command with inherited output; throws when it exits non-zero. */
function run(cmd, args, { cwd = REPO_ROOT, capture = false, env } = {}) {
  console.log(`$ ${cmd} ${args.join(" ")}${cwd === REPO_ROOT ? "" : `   (in ${rel(cwd)})`}`);
  const options = { cwd, stdio: capture ? ["ignore", "pipe", "inherit"] : "inherit", encoding: "utf8", timeout: COMMAND_TIMEOUT_MS };
  const result = spawnSync(cmd, args, { ...options, env: env ? { ...process.env, ...env } : process.env });
  if (result.error?.code === "ETIMEDOUT") throw new Failure(`${cmd} ${args.join(" ")} still running after ${COMMAND_TIMEOUT_MS / 1000}s: stopped`);
  if (result.error) throw new Failure(`${cmd}: ${result.error.message}`);
  check(result.status === 0, `${cmd} ${args.join(" ")} exited with ${result.status ?? result.signal}`);
  return result.stdout;
}

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
const posix = (p) => p.split(path.sep).join("/");
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;

/** Same measures as scripts/build.mjs: gzip level 9, brotli quality 11 with a size hint. */
function measure(data) {
  return {
    raw: data.length,
    gzip: zlib.gzipSync(data, { level: 9 }).length,
    brotli: zlib.brotliCompressSync(data, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
    }).length,
  };
}

// ---- 0. prerequisites ----
await step(
  "prerequisites",
  () => {
    check(existsSync(path.join(PKG, "index.js")) && existsSync(path.join(PKG, "package.json")), `${rel(PKG)}/ is not built: run node scripts/build.mjs first`);
    check(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p wharf-server`);
    check(existsSync(CHROMIUM_PATH), `${CHROMIUM_PATH} is missing: run scripts/setup.sh (apt-get install chromium)`);
    const npm = spawnSync("npm", ["--version"], { encoding: "utf8" });
    check(npm.status === 0, "npm is not on PATH");
    for (const tool of ["publint", "@arethetypeswrong/cli"]) {
      check(existsSync(path.join(REPO_ROOT, "node_modules", tool, "package.json")), `node_modules/${tool} is missing: run npm ci (or scripts/setup.sh)`);
    }
    console.log(`pkg/ built; ${rel(SERVER_BIN)}; ${CHROMIUM_PATH}; node ${process.version}, npm ${npm.stdout.trim()}`);
  },
  { fatal: true },
);

/** Package-relative paths of what module `file` (package-relative) imports or loads with new URL(..., import.meta.url). */
function localImports(file) {
  const source = readFileSync(path.join(unpacked, file), "utf8");
  const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']|new URL\(\s*["'`]([^"'`]+)["'`]\s*,\s*import\.meta\.url/g;
  return [...source.matchAll(pattern)].map((m) => posix(path.normalize(path.join(path.dirname(file), m[1] ?? m[2]))));
}

/** Every file that entry `file` loads, itself included (the module graph through relative imports). */
function closure(file) {
  const seen = new Set();
  const visit = (f) => {
    if (seen.has(f) || !existsSync(path.join(unpacked, f))) return;
    seen.add(f);
    if (/\.m?js$/.test(f)) localImports(f).forEach(visit);
  };
  visit(posix(path.normalize(file)));
  return [...seen];
}

// ---- 1. npm pack ----
const tarball = await step(
  "npm pack pkg/",
  () => {
    mkdirSync(OUT, { recursive: true });
    for (const f of readdirSync(OUT)) if (f.endsWith(".tgz")) rmSync(path.join(OUT, f));
    const [info] = JSON.parse(run("npm", ["pack", `./${rel(PKG)}`, "--pack-destination", rel(OUT), "--json", "--loglevel=error"], { capture: true }));
    const file = path.join(OUT, info.filename);
    check(existsSync(file), `npm pack reported ${info.filename} but ${rel(file)} is not there`);
    console.log(`tarball: ${rel(file)}  ${statSync(file).size} B (${kb(statSync(file).size)}), ${info.entryCount} files, unpacked ${info.unpackedSize} B`);
    console.log(`package: ${info.id}  integrity ${info.integrity}`);
    return { file, info };
  },
  { fatal: true },
);

// ---- 2. contents and sizes ----
await step(
  "tarball contents",
  () => {
    rmSync(path.join(OUT, "unpacked"), { recursive: true, force: true });
    mkdirSync(path.join(OUT, "unpacked"), { recursive: true });
    run("tar", ["-xzf", tarball.file, "-C", path.join(OUT, "unpacked")]);
    const shipped = walk(unpacked).map((f) => posix(path.relative(unpacked, f))).sort();
    // Every shipped file is byte for byte pkg/'s (the tarball is what the build made).
    for (const f of shipped) {
      const ours = path.join(PKG, f);
      check(existsSync(ours), `the tarball has ${f}, which pkg/ does not`);
      check(readFileSync(ours).equals(readFileSync(path.join(unpacked, f))), `${f} in the tarball differs from pkg/${f}`);
    }
    // Everything pkg/ has that a user's bundle or browser loads is shipped.
    // The source maps too: devtools fetch them from the package, bundlers read them from node_modules.
    const needed = walk(PKG).map((f) => posix(path.relative(PKG, f))).filter((f) => /\.(m?js|wasm|d\.ts|js\.map)$/.test(f) || f === "package.json");
    const missing = needed.filter((f) => !shipped.includes(f));
    check(missing.length === 0, `pkg/ files left out of the tarball (package.json "files"): ${missing.join(", ")}`);
    // package.json's entry points resolve inside the tarball, and so does every relative import.
    const manifest = JSON.parse(readFileSync(path.join(unpacked, "package.json"), "utf8"));
    const entries = [manifest.main, manifest.module, manifest.types, ...Object.values(manifest.exports ?? {}).flatMap((e) => (typeof e === "string" ? [e] : Object.values(e)))];
    for (const entry of entries.filter(Boolean)) check(shipped.includes(posix(path.normalize(entry))), `package.json names ${entry}, which the tarball lacks`);
    for (const f of shipped.filter((f) => /\.m?js$/.test(f))) {
      for (const target of localImports(f)) check(shipped.includes(target), `${f} loads ${target}, which the tarball lacks`);
    }
    console.log(`${shipped.length} files, all identical to pkg/; entry points and every relative import/new URL target present:`);
    for (const f of shipped) console.log(`  ${String(statSync(path.join(unpacked, f)).size).padStart(8)}  ${f}`);
  },
  { fatal: true },
);

await step("source maps of the shipped JavaScript (tests/packaging/sourcemaps.mjs)", () => {
  try {
    for (const line of checkSourceMaps(unpacked)) console.log(line);
  } catch (error) {
    throw new Failure(error.message);
  }
});

const wasmName = existsSync(unpacked) ? readdirSync(unpacked).find((f) => f.endsWith(".wasm")) : undefined;
if (!wasmName) {
  failures.push("tarball contents: no .wasm at the package's top level");
  finish();
}
const wasmBytes = readFileSync(path.join(unpacked, wasmName));

await step("sizes of the shipped JavaScript and wasm, against wasm-pack.toml [budget]", () => {
  // The budget is on what `import ... from "wharf"` loads: the "." entry and everything it imports
  // or fetches (wasm, glue, snippets); other entry points (e.g. "./react") are printed on their own.
  const budget = parseToml(readFileSync(path.join(REPO_ROOT, "wasm-pack.toml"), "utf8")).budget ?? {};
  const manifest = JSON.parse(readFileSync(path.join(unpacked, "package.json"), "utf8"));
  const entryFile = (e) => (typeof e === "string" ? e : e?.import ?? e?.browser ?? e?.default);
  const exportsMap = typeof manifest.exports === "object" && !Array.isArray(manifest.exports) && Object.keys(manifest.exports).some((k) => k.startsWith(".")) ? manifest.exports : { ".": manifest.exports ?? manifest.module ?? manifest.main };
  const entryPoints = Object.entries(exportsMap).filter(([, e]) => /\.m?js$/.test(entryFile(e) ?? ""));
  check(entryPoints.some(([k]) => k === "."), 'package.json has no "." JavaScript entry point');
  const byOrder = (a, b) => Number(b.endsWith(".wasm")) - Number(a.endsWith(".wasm")) || a.localeCompare(b);
  const main = closure(entryFile(exportsMap["."])).filter((f) => /\.(m?js|wasm)$/.test(f)).sort(byOrder);
  const rows = main.map((file) => ({ file, ...measure(readFileSync(path.join(unpacked, file))) }));
  const sum = (list, file) => list.reduce((t, r) => ({ file, raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }), { file, raw: 0, gzip: 0, brotli: 0 });
  const total = sum(rows, 'total of "wharf" (the "." entry)');
  const adds = (file, label) => {
    const extra = closure(file).filter((f) => /\.(m?js|wasm)$/.test(f) && !main.includes(f));
    return sum(extra.map((f) => measure(readFileSync(path.join(unpacked, f)))), `${label} adds (${extra.join(", ")})`);
  };
  const others = entryPoints.filter(([k]) => k !== ".").map(([k, e]) => adds(entryFile(e), `"wharf/${k.slice(2)}"`));
  // Node's entry ("node" condition of "."): never in a browser bundle, so outside the budget too.
  if (typeof exportsMap["."] === "object" && exportsMap["."].node) others.push(adds(exportsMap["."].node, '"wharf" under Node'));
  const shippedCode = walk(unpacked).map((f) => posix(path.relative(unpacked, f))).filter((f) => /\.(m?js|wasm)$/.test(f));
  const reached = new Set(entryPoints.flatMap(([, e]) => [entryFile(e), e?.node].filter(Boolean).flatMap(closure)));
  const unreached = shippedCode.filter((f) => !reached.has(f));
  const maps = sum(walk(unpacked).filter((f) => f.endsWith(".map")).map((f) => measure(readFileSync(f))), "source maps (devtools only, not in the budget)");
  const width = Math.max(...[...rows, total, ...others, maps].map((r) => r.file.length));
  const line = (r) => `${r.file.padEnd(width)}  ${[r.raw, r.gzip, r.brotli].map((n) => String(n).padStart(9)).join("  ")}`;
  console.log(`${"file".padEnd(width)}  ${["raw", "gzip -9", "brotli 11"].map((h) => h.padStart(9)).join("  ")}`);
  rows.forEach((r) => console.log(line(r)));
  console.log(`${"-".repeat(width + 33)}\n${line(total)}`);
  others.forEach((r) => console.log(line(r)));
  if (unreached.length) console.log(`shipped but loaded by no entry point: ${unreached.join(", ")}`);
  if (maps.raw) console.log(line(maps));
  const wasm = rows.find((r) => r.file.endsWith(".wasm"));
  check(wasm, 'the "." entry loads no .wasm (no new URL("....wasm", import.meta.url) found)');
  console.log(`budget (wasm-pack.toml): wasm gzip ${wasm.gzip} / ${budget.wasm_gzip_bytes ?? "none"} B, total gzip ${total.gzip} / ${budget.total_gzip_bytes ?? "none"} B`);
  const sizesJson = path.join(REPO_ROOT, "target", "wharf-sizes.json");
  if (existsSync(sizesJson)) {
    const built = JSON.parse(readFileSync(sizesJson, "utf8")).total;
    const same = built.raw === total.raw && built.gzip === total.gzip && built.brotli === total.brotli;
    console.log(`${rel(sizesJson)} (the build's own table): total ${built.raw} / ${built.gzip} / ${built.brotli} B ${same ? "= the tarball's" : "(differs from the tarball's: pkg/ changed after that build, or the build measures other files)"}`);
  }
  const over = [];
  if (budget.wasm_gzip_bytes != null && wasm.gzip > budget.wasm_gzip_bytes) over.push(`wasm gzip ${wasm.gzip} B > ${budget.wasm_gzip_bytes} B`);
  if (budget.total_gzip_bytes != null && total.gzip > budget.total_gzip_bytes) over.push(`total gzip ${total.gzip} B > ${budget.total_gzip_bytes} B`);
  check(over.length === 0, `over the size budget: ${over.join("; ")}`);
});

// ---- 3. lints of the tarball: publint and "are the types wrong" (both offline on a .tgz) ----
await step("publint --strict (the tarball)", () => {
  run("npx", ["--no-install", "publint", "run", tarball.file, "--strict"]);
});

await step("attw, are the types wrong (the tarball)", () => {
  run("npx", [
    "--no-install",
    "attw",
    tarball.file,
    // The package is ESM only (wasm-bindgen's --target web glue): CommonJS code loads it with
    // import(), which this rule would flag for every entry under node16-from-CJS. Every other
    // rule, in every resolution mode (node10, node16 CJS and ESM, bundler), still applies.
    "--ignore-rules",
    "cjs-resolves-to-esm",
    // A file, not a module: exported so that init(url) users can point a bundler or a server at
    // it (`new URL("wharf/wharf_wasm_bg.wasm", import.meta.url)`, `?url`); it has no types to find.
    "--exclude-entrypoints",
    "./wharf_wasm_bg.wasm",
  ]);
});

// ---- 4 and 5. the fixture apps ----

/** Copies a fixture (without node_modules/dist) to target/packaging/<name>, installs its lockfile and the tarball. */
function install(name) {
  const dir = path.join(OUT, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(path.join(FIXTURES, name), dir, {
    recursive: true,
    filter: (src) => !/[\\/](node_modules|dist)$/.test(src),
  });
  const npmFlags = ["--prefer-offline", "--no-audit", "--no-fund"];
  run("npm", ["ci", ...npmFlags], { cwd: dir });
  run("npm", ["install", "--no-save", ...npmFlags, tarball.file], { cwd: dir });
  const installed = path.join(dir, "node_modules", "wharf");
  const version = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8")).version;
  check(version === tarball.info.version, `node_modules/wharf is ${version}, not the packed ${tarball.info.version}`);
  check(readFileSync(path.join(installed, wasmName)).equals(wasmBytes), "node_modules/wharf's wasm is not the tarball's");
  return dir;
}

/** Builds with the fixture's `npm run build`; the package's wasm must be emitted into dist/ as an asset. */
function build(dir) {
  run("npm", ["run", "build"], { cwd: dir });
  const dist = path.join(dir, "dist");
  check(existsSync(path.join(dist, "index.html")), `${rel(dist)}/index.html was not written`);
  const files = walk(dist);
  for (const f of files) console.log(`  ${String(statSync(f).size).padStart(8)}  ${posix(path.relative(dist, f))}`);
  const wasmAssets = files.filter((f) => f.endsWith(".wasm"));
  check(wasmAssets.length > 0, "the build emitted no .wasm: the bundler did not pick up wharf_wasm.js's new URL(\"wharf_wasm_bg.wasm\", import.meta.url)");
  check(wasmAssets.some((f) => readFileSync(f).equals(wasmBytes)), "no emitted .wasm equals the package's (transformed, or another file)");
  return { dist, wasmAssets: wasmAssets.map((f) => posix(path.relative(dist, f))) };
}

/** Serves dist/ with the reference server, opens it in Chromium, and checks the page's report and the server's records. */
async function runApp({ dist, wasmAssets }, expected) {
  const server = await startSyncServer([], { www: dist });
  const browser = await launchBrowser();
  const errors = collectPageErrors(browser.page);
  const wasmRequests = [];
  browser.context.on("request", (request) => {
    const { pathname } = new URL(request.url());
    if (pathname.endsWith(".wasm")) wasmRequests.push(pathname);
    // The server also serves the repository's pkg/ at /pkg: the app must use only what it built.
    if (pathname.startsWith("/pkg/")) errors.push(`request to the repository's pkg/ instead of the app's own files: ${request.url()}`);
  });
  // The page's listeners miss requests Chromium makes on its own (the favicon): name their URL.
  browser.context.on("response", (response) => {
    if (response.status() >= 400) errors.push(`HTTP ${response.status()} (context): ${response.url()}`);
  });
  try {
    await browser.page.goto(`${server.url}/`);
    const report = await eventually(
      async () => {
        const value = await browser.page.evaluate(() => window.wharfPackaging);
        if (value === undefined) throw new Failure(`the page reported nothing yet: #status = ${await browser.page.textContent("#status")}`);
        return value;
      },
      { timeout: 30_000, interval: 100 },
    );
    console.log(`page reported: ${JSON.stringify(report)}`);
    check(report.ok === true, `the app failed: ${report.error}`);
    check(report.page.outbox === 0, `the page's outbox still holds ${report.page.outbox} ops after sync()`);
    const state = await server.state();
    const records = state.records.filter((r) => r.collection === "notes").sort((a, b) => a.key.localeCompare(b.key));
    console.log(`server /debug/state: ${records.map((r) => `${r.collection}/${r.key} v${r.version}`).join(", ") || "no records"}`);
    check(
      JSON.stringify(records.map((r) => r.key)) === JSON.stringify([...expected].sort()),
      `the server holds ${JSON.stringify(records.map((r) => r.key))}, expected ${JSON.stringify([...expected].sort())}`,
    );
    for (const r of records) check(r.version === 1, `${r.key} is at version ${r.version} on the server, not 1 (applied more than once)`);
    console.log(`wasm fetched: ${[...new Set(wasmRequests)].join(", ") || "none seen"}`);
    check(
      wasmRequests.length > 0 && wasmRequests.every((p) => wasmAssets.includes(p.replace(/^\//, ""))),
      `the app must fetch its own emitted wasm (${wasmAssets.join(", ")}), fetched: ${wasmRequests.join(", ") || "none"}`,
    );
    check(errors.length === 0, `errors in the page:\n${errors.join("\n")}`);
    return report;
  } catch (error) {
    if (!(error instanceof Failure) || error.message.startsWith("errors in the page")) throw error;
    const serverLog = server.log.join("").trim().split("\n").slice(-20).join("\n");
    throw new Failure(`${error.message}\npage errors: ${errors.join("\n") || "none"}\nserver log (last lines): ${serverLog || "empty"}`);
  } finally {
    await browser.close();
    await server.close();
  }
}

/** Both apps' service workers answer { role, outbox, scriptType } after their write and sync(). */
function checkServiceWorker(report, scriptType) {
  const sw = report.serviceWorker;
  check(sw && sw.outbox === 0, `the service worker answered ${JSON.stringify(sw)}`);
  check(sw.role === "leader", `the service worker's syncRole is ${sw.role}, not "leader" (it alone has its database open)`);
  console.log(`service worker ${report.serviceWorkerUrl}: a ${sw.scriptType} worker, syncRole ${sw.role}`);
  if (scriptType) check(sw.scriptType === scriptType, `the service worker ran as a ${sw.scriptType} script, not a ${scriptType} one`);
}

for (const { name, expected, scriptType } of [
  // Registered with { type: "module" }, and Vite leaves that option alone: a module service worker.
  { name: "vite-app", expected: ["vite-page", "vite-sw"], scriptType: "module" },
  // webpack rewrites { type: "module" } to { type: undefined } unless output.module is on (not a
  // default): its service worker is a classic one, which is still worth running.
  { name: "webpack-app", expected: ["webpack-page", "webpack-sw"], scriptType: undefined },
]) {
  const dir = await step(`${name}: npm ci + npm install --no-save ${path.basename(tarball.file)}`, () => install(name));
  if (!dir) continue;
  const built = await step(`${name}: npm run build (default settings, no plugin)`, () => build(dir));
  if (!built) continue;
  await step(`${name}: dist/ served by wharf-server, in headless Chromium: page and service worker write + sync`, async () =>
    checkServiceWorker(await runApp(built, expected), scriptType),
  );
}

// ---- 6. a vitest project: app code tested in Node, on fake-indexeddb ----

/**
 * Writes README.md's example of "### Tests in Node (vitest)" into `dir`/readme/: each ```ts block
 * whose first line is a comment naming a file (`// todos.ts: ...`) becomes that file, so the
 * README's example runs as written. Returns the file names.
 */
function writeReadmeExample(dir) {
  const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
  const section = /\n### Tests in Node \(vitest\)\n([\s\S]*?)\n##/.exec(readme)?.[1];
  check(section, 'README.md has no "### Tests in Node (vitest)" section');
  const blocks = [...section.matchAll(/```ts\n(\/\/ ([\w.-]+\.ts)\b[^\n]*\n[\s\S]*?)```/g)];
  check(blocks.some((m) => m[2].endsWith(".test.ts")), 'README.md\'s "Tests in Node (vitest)" has no ```ts block starting with a `// <name>.test.ts` comment');
  mkdirSync(path.join(dir, "readme"), { recursive: true });
  for (const [, code, name] of blocks) writeFileSync(path.join(dir, "readme", name), code);
  console.log(`README.md's example: ${blocks.map((m) => `readme/${m[2]}`).join(", ")}`);
  return blocks.map((m) => m[2]);
}

const vitestDir = await step(`vitest-app: npm ci + npm install --no-save ${path.basename(tarball.file)}, and README.md's example`, () => {
  const dir = install("vitest-app");
  writeReadmeExample(dir);
  return dir;
});
if (vitestDir) {
  await step('vitest-app: npm test (vitest run in Node: the "node" entry, fake-indexeddb, a transport stub and the reference server)', async () => {
    const server = await startSyncServer([]);
    try {
      const results = path.join(vitestDir, "vitest-results.json");
      run("npm", ["test", "--", "--reporter=default", "--reporter=json", `--outputFile.json=${results}`], {
        cwd: vitestDir,
        env: { WHARF_SERVER_URL: server.url },
      });
      const report = JSON.parse(readFileSync(results, "utf8"));
      const { numTotalTests: total, numPassedTests: passed, numPendingTests: skipped, numTodoTests: todo } = report;
      console.log(`vitest: ${passed} of ${total} tests passed, ${skipped} skipped, ${todo} todo`);
      check(report.success === true && total >= 5 && passed === total, `vitest ran ${total} tests, ${passed} passed (expected at least 5, all passing, none skipped)`);
      const files = report.testResults.map((r) => posix(path.relative(vitestDir, r.name)));
      console.log(`test files: ${files.join(", ")}`);
      check(files.includes("src/todos.test.ts") && files.some((f) => f.startsWith("readme/")), `vitest did not run both src/todos.test.ts and README.md's example (ran ${files.join(", ")})`);
      const state = await server.state();
      const records = state.records.filter((r) => r.collection === "todos");
      console.log(`server /debug/state: ${records.map((r) => `${r.collection}/${r.key} v${r.version}`).join(", ") || "no records"}`);
      check(
        records.length === 1 && records[0].version === 1 && records[0].value?.title === "Synced over HTTP",
        `the server should hold the test's one todo at version 1, it holds ${JSON.stringify(records)}`,
      );
    } finally {
      await server.close();
    }
  });
}

finish();

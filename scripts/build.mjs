// Builds Wharf's npm package into pkg/. It exists because wasm-pack cannot be made to build here
// the way we need: it runs the first wasm-opt on PATH (Debian's breaks wasm-bindgen output) and
// may try downloads. This script does the same steps itself, driven by wasm-pack.toml (our own
// config): cargo build -> wasm-bindgen (version checked against Cargo.lock) -> wasm-opt from npm's
// binaryen -> short import/export names (wasm-names.mjs) -> hand-written entry files + package.json from
// pkg.json.tmpl -> JavaScript minified with esbuild, each file with an external source map
// (`.js.map` next to it, sources named by their repository paths, texts embedded) -> size table
// and budget (JS + wasm, what browsers load; the maps are reported apart).
// Usage: node scripts/build.mjs   (env WHARF_FEATURES="a,b" adds cargo features, e.g. for tests)

import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

import { shortenNames } from "./wasm-names.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const rel = (p) => path.relative(ROOT, p) || ".";
const started = Date.now();

function fail(message) {
  console.error(`\nbuild: FAILED: ${message}`);
  process.exit(1);
}

function step(title) {
  console.log(`\n==> ${title}  [${((Date.now() - started) / 1000).toFixed(1)}s]`);
}

/** Runs a command with inherited output; fails the build on a non-zero exit. */
function run(cmd, args, { capture = false } = {}) {
  if (!capture) console.log(`$ ${[cmd, ...args].join(" ")}`);
  const result = spawnSync(cmd, args, { cwd: ROOT, stdio: capture ? "pipe" : "inherit", encoding: "utf8" });
  if (result.error?.code === "ENOENT") fail(`${cmd} not found on PATH: run scripts/setup.sh`);
  if (result.error) fail(`${cmd}: ${result.error.message}`);
  if (result.status !== 0) fail(`${cmd} ${args.join(" ")} exited with ${result.status}\n${result.stderr ?? ""}`);
  return capture ? result.stdout.trim() : "";
}

let parseToml;
try {
  ({ parse: parseToml } = await import("smol-toml"));
} catch {
  fail("the npm package smol-toml is missing: run scripts/setup.sh (or npm ci)");
}
const readToml = (file) => {
  try {
    return parseToml(readFileSync(path.join(ROOT, file), "utf8"));
  } catch (error) {
    fail(`cannot read ${file}: ${error.message}`);
  }
};

// ---- configuration ----
const config = readToml("wasm-pack.toml");
const cargo = readToml("Cargo.toml");
const build = config.build ?? {};
const crate = build.crate ?? cargo.package?.name;
const outDir = path.join(ROOT, build.out_dir ?? "pkg");
const outName = build.out_name ?? "wharf_wasm";
const targets = build.targets ?? ["web"];
const profile = build.profile ?? "release";
const envFeatures = (process.env.WHARF_FEATURES ?? "").split(/[\s,]+/).filter(Boolean);
const features = [...new Set([...(build.features ?? []), ...envFeatures])];
const budget = config.budget ?? {};
if (targets.length !== 1 || targets[0] !== "web") {
  fail(`wasm-pack.toml [build] targets = ${JSON.stringify(targets)}: only ["web"] is supported (index.js uses its init)`);
}
if (crate !== cargo.package?.name) fail(`wasm-pack.toml crate "${crate}" is not Cargo.toml's package "${cargo.package?.name}"`);

// ---- 1. cargo build ----
step(`cargo build (${profile}${features.length ? `, features: ${features.join(",")}` : ""})`);
const cargoArgs = ["build", "--lib", "--target", "wasm32-unknown-unknown", "-p", crate];
cargoArgs.push(...(profile === "release" ? ["--release"] : ["--profile", profile]));
if (features.length) cargoArgs.push("--features", features.join(","));
run("cargo", cargoArgs);
const metadata = JSON.parse(run("cargo", ["metadata", "--format-version", "1", "--no-deps", "--offline"], { capture: true }));
const profileDir = { dev: "debug", test: "debug", release: "release", bench: "release" }[profile] ?? profile;
const libName = crate.replaceAll("-", "_");
const inputWasm = path.join(metadata.target_directory, "wasm32-unknown-unknown", profileDir, `${libName}.wasm`);
if (!existsSync(inputWasm)) fail(`cargo did not produce ${inputWasm} (is crate-type "cdylib" set?)`);

// ---- 2. wasm-bindgen, of exactly Cargo.lock's version ----
step("wasm-bindgen");
const locked = (readToml("Cargo.lock").package ?? []).filter((p) => p.name === "wasm-bindgen").map((p) => p.version);
if (locked.length !== 1) fail(`expected one wasm-bindgen in Cargo.lock, found ${JSON.stringify(locked)}`);
const cliVersion = run("wasm-bindgen", ["--version"], { capture: true }).split(/\s+/)[1];
if (cliVersion !== locked[0]) {
  fail(`wasm-bindgen CLI is ${cliVersion} but Cargo.lock has wasm-bindgen ${locked[0]}: run scripts/setup.sh`);
}
console.log(`wasm-bindgen ${cliVersion} (matches Cargo.lock)`);
rmSync(outDir, { recursive: true, force: true });
run("wasm-bindgen", [inputWasm, "--target", targets[0], "--out-dir", outDir, "--out-name", outName]);
const wasmFile = path.join(outDir, `${outName}_bg.wasm`);

// ---- 3. wasm-opt from npm's binaryen only ----
const wasmOpt = config["wasm-opt"] ?? {};
let wasmOptVersion = null;
if (wasmOpt.enabled !== false) {
  step("wasm-opt (npm binaryen)");
  const bin = ["node_modules/binaryen/bin/wasm-opt", "node_modules/.bin/wasm-opt"]
    .map((p) => path.join(ROOT, p))
    .find((p) => existsSync(p));
  if (!bin) fail("node_modules/binaryen is missing: run scripts/setup.sh (never use a wasm-opt from PATH)");
  wasmOptVersion = run(process.execPath, [bin, "--version"], { capture: true });
  console.log(`using ${rel(bin)}: ${wasmOptVersion}`);
  const tmp = `${wasmFile}.opt.tmp`;
  run(process.execPath, [bin, ...(wasmOpt.args ?? ["-Oz"]), wasmFile, "-o", tmp]);
  renameSync(tmp, wasmFile);
} else {
  console.log("\nwasm-opt disabled in wasm-pack.toml");
}

// ---- 3b. short import and export names (scripts/wasm-names.mjs) ----
if ((config.minify ?? {}).short_wasm_names !== false) {
  step("short import and export names");
  const gluePath = path.join(outDir, `${outName}.js`);
  const typingFiles = [`${outName}.d.ts`, `${outName}_bg.wasm.d.ts`].filter((f) => existsSync(path.join(outDir, f)));
  const typings = Object.fromEntries(typingFiles.map((f) => [f, readFileSync(path.join(outDir, f), "utf8")]));
  let shortened;
  try {
    shortened = shortenNames(readFileSync(wasmFile), readFileSync(gluePath, "utf8"), typings, `./${outName}_bg.js`);
  } catch (error) {
    fail(`shortening the import and export names: ${error.message}`);
  }
  writeFileSync(wasmFile, shortened.wasm);
  writeFileSync(gluePath, shortened.glue);
  for (const [file, text] of Object.entries(shortened.typings)) writeFileSync(path.join(outDir, file), text);
  console.log(`${shortened.imports} imports and ${shortened.exports} exports renamed in ${rel(wasmFile)}, ${rel(gluePath)} and its typings`);
}

// ---- 4. entry files, package.json, README ----
step("package files");
// The entries: "wharf" (index.js; node.js under Node, which loads the wasm from disk),
// "wharf/react" (react.js, the React hooks) and "wharf/vue" (vue.js, the Vue composables), with
// their types (node.js's are index.d.ts).
// Where each copied file came from, for its source map (see step 5).
const originals = new Map();
for (const name of ["index.js", "internal.js", "index.d.ts", "node.js", "react.js", "react.d.ts", "vue.js", "vue.d.ts"]) {
  const source = path.join(ROOT, "src/api/js", name);
  if (!existsSync(source)) fail(`${rel(source)} is missing (a hand-written package entry)`);
  cpSync(source, path.join(outDir, name));
  originals.set(path.join(outDir, name), source);
}
const values = {
  name: cargo.package.name,
  version: cargo.package.version,
  description: cargo.package.description ?? "",
  license: cargo.package.license ?? "",
};
const rendered = readFileSync(path.join(ROOT, "pkg.json.tmpl"), "utf8").replace(/\{\{\s*(\w+)\s*\}\}/g, (match, key) => {
  if (!(key in values)) fail(`pkg.json.tmpl: unknown placeholder ${match}`);
  return JSON.stringify(String(values[key])).slice(1, -1); // JSON-escaped, inside the template's quotes
});
let pkgJson;
try {
  pkgJson = JSON.parse(rendered);
} catch (error) {
  fail(`pkg.json.tmpl does not render to valid JSON: ${error.message}`);
}
writeFileSync(path.join(outDir, "package.json"), `${JSON.stringify(pkgJson, null, 2)}\n`);
if (existsSync(path.join(ROOT, "README.md"))) cpSync(path.join(ROOT, "README.md"), path.join(outDir, "README.md"));
else console.warn("warning: README.md is missing, pkg/ ships without one");
console.log(`pkg/package.json: ${pkgJson.name}@${pkgJson.version}`);

// ---- 5. minified JavaScript, each file with its source map ----
// A map is written next to each minified file (`wharf_wasm.js.map`...), linked by the
// `//# sourceMappingURL=` comment esbuild puts last, with the original texts in `sourcesContent`
// so that devtools and bundlers need nothing but node_modules. Its `sources` name the files of
// this repository, relative to the map: pkg/ sits at the repository's root, so index.js's source
// is "../src/api/js/index.js" and a snippet's "../src/platform/js/idb.js". The glue wasm-bindgen
// generated has no file here: it is named "wasm-bindgen/wharf_wasm.js" (its text is embedded).
// tests/packaging/sourcemaps.mjs checks the shipped maps.
const GENERATED = "wasm-bindgen";
const posix = (p) => p.split(path.sep).join("/");
const snippetsDir = path.join(outDir, "snippets");
/** The repository file `file` (in pkg/) is a copy of, or null (generated, or changed since). */
function originalOf(file) {
  let original = originals.get(file);
  // snippets/<crate>-<hash>/<path from the crate's root>, and the crate's root is ROOT.
  if (!original && file.startsWith(snippetsDir + path.sep)) original = path.join(ROOT, ...path.relative(snippetsDir, file).split(path.sep).slice(1));
  return original && existsSync(original) && readFileSync(original).equals(readFileSync(file)) ? original : null;
}
/** The name a map in `mapDir` gives the source `file` (in pkg/). */
function sourceName(file, mapDir) {
  const original = originalOf(file);
  return posix(original ? path.relative(mapDir, original) : path.join(GENERATED, path.relative(outDir, file)));
}
/** Writes `file`.map from esbuild's map (sources relative to `file`'s directory), renamed as above. */
function writeMap(file, mapText, sourceFiles) {
  const map = JSON.parse(mapText);
  if (!Array.isArray(map.sourcesContent) || map.sourcesContent.length !== map.sources.length) {
    fail(`esbuild's map of ${rel(file)} has no sourcesContent for every source`);
  }
  const dir = path.dirname(file);
  map.sources = map.sources.map((s, i) => sourceName(sourceFiles?.[i] ?? path.resolve(dir, s), dir));
  map.file = path.basename(file);
  writeFileSync(`${file}.map`, JSON.stringify(map));
}
const minify = config.minify ?? {};
const sourceMaps = minify.source_maps !== false;
if (minify.enabled !== false) {
  step(`minify JavaScript (esbuild)${sourceMaps ? ", with source maps" : ""}`);
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch {
    fail("the npm package esbuild is missing: run scripts/setup.sh (or npm ci)");
  }
  const jsFiles = (dir) =>
    existsSync(dir)
      ? readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? jsFiles(path.join(dir, e.name)) : /\.m?js$/.test(e.name) ? [path.join(dir, e.name)] : [],
        )
      : [];
  const glue = path.join(outDir, `${outName}.js`);
  if (minify.bundle_snippets !== false) {
    // The glue and the snippets it imports become one module: one gzip stream instead of seven,
    // and no exports between them to keep. Nothing else imports a snippet.
    try {
      esbuild.buildSync({
        entryPoints: [glue],
        outfile: glue,
        allowOverwrite: true,
        bundle: true,
        minify: true,
        format: "esm",
        target: minify.target ?? "es2020",
        legalComments: "none",
        logLevel: "error",
        sourcemap: sourceMaps ? "linked" : false,
        sourcesContent: true,
      });
    } catch (error) {
      fail(`esbuild could not bundle ${rel(glue)} with its snippets: ${error.message}`);
    }
    // Renamed while the snippets are still there to compare with the repository's files.
    if (sourceMaps) writeMap(glue, readFileSync(`${glue}.map`, "utf8"));
    rmSync(path.join(outDir, "snippets"), { recursive: true, force: true });
  }
  for (const file of jsFiles(outDir).filter((f) => minify.bundle_snippets === false || f !== glue)) {
    const source = readFileSync(file, "utf8");
    const options = { minify: true, format: "esm", target: minify.target ?? "es2020", legalComments: "none" };
    let result;
    try {
      result = esbuild.transformSync(source, sourceMaps ? { ...options, sourcemap: "external", sourcefile: path.basename(file), sourcesContent: true } : options);
    } catch (error) {
      fail(`esbuild could not minify ${rel(file)}: ${error.message}`);
    }
    if (sourceMaps) {
      writeMap(file, result.map, [file]);
      writeFileSync(file, `${result.code}//# sourceMappingURL=${path.basename(file)}.map\n`);
    } else {
      writeFileSync(file, result.code);
    }
  }
  // Every file of the package's JavaScript ends with the link to its map.
  const unlinked = sourceMaps ? jsFiles(outDir).filter((f) => !readFileSync(f, "utf8").endsWith(`//# sourceMappingURL=${path.basename(f)}.map\n`) || !existsSync(`${f}.map`)) : [];
  if (unlinked.length) fail(`no source map linked from ${unlinked.map(rel).join(", ")}`);
  console.log(`esbuild ${esbuild.version}: ${jsFiles(outDir).length} files${sourceMaps ? ", each with its .js.map" : ""}`);
}
// "files" (a name or a glob: "*.js.map" also matches nothing when maps are off) against what exists.
for (const entry of pkgJson.files ?? []) {
  if (entry !== "README.md" && entry !== "snippets/" && !entry.includes("*") && !existsSync(path.join(outDir, entry))) {
    fail(`package.json "files" lists ${entry}, which the build did not produce`);
  }
}

// ---- 6. sizes and budget ----
step("sizes");
const walk = (dir) =>
  existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)],
      )
    : [];
const measure = (file) => {
  const data = readFileSync(file);
  return {
    file: path.relative(outDir, file).split(path.sep).join("/"),
    raw: data.length,
    gzip: zlib.gzipSync(data, { level: 9 }).length,
    brotli: zlib.brotliCompressSync(data, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
    }).length,
  };
};
// What every user of the package loads; the budget's total is over these.
const measured = [
  wasmFile,
  path.join(outDir, `${outName}.js`),
  path.join(outDir, "index.js"),
  path.join(outDir, "internal.js"),
  ...walk(path.join(outDir, "snippets")).filter((f) => /\.m?js$/.test(f)).sort(),
].map(measure);
// Opt-in entries, shown but left out of the total: react.js and vue.js are loaded only by apps
// that import "wharf/react" or "wharf/vue", which already ship React or Vue itself (tens of KB),
// so their few hundred bytes would only blur the number the budget guards (the cost of Wharf for
// everyone); node.js only under Node (the "node" export condition), never in a browser bundle.
const optional = ["react.js", "vue.js", "node.js"].map((file) => measure(path.join(outDir, file)));
const total = { file: "total", raw: 0, gzip: 0, brotli: 0 };
for (const row of measured) for (const k of ["raw", "gzip", "brotli"]) total[k] += row[k];
const optionalLabel = (r) => ({ ...r, file: `${r.file} (${r.file === "node.js" ? "Node only" : "opt-in"}, not in total)` });
// The source maps: shipped in the tarball, but fetched only by open devtools (and read only by
// bundlers asked for maps), so never in the total or the budget; shown apart, summed.
const maps = walk(outDir).filter((f) => f.endsWith(".map")).sort().map(measure);
const mapsTotal = { file: `source maps (${maps.length} .js.map, devtools only, not in total)`, raw: 0, gzip: 0, brotli: 0 };
for (const row of maps) for (const k of ["raw", "gzip", "brotli"]) mapsTotal[k] += row[k];
const width = Math.max(...[...measured, total, ...optional.map(optionalLabel), mapsTotal].map((r) => r.file.length), 4);
const line = (r) => `${r.file.padEnd(width)}  ${[r.raw, r.gzip, r.brotli].map((n) => String(n).padStart(9)).join("  ")}`;
console.log(`${"file".padEnd(width)}  ${["raw", "gzip -9", "brotli 11"].map((h) => h.padStart(9)).join("  ")}`);
measured.forEach((r) => console.log(line(r)));
console.log(`${"-".repeat(width + 33)}\n${line(total)}`);
optional.forEach((r) => console.log(line(optionalLabel(r))));
if (maps.length) console.log(line(mapsTotal));

const report = {
  package: `${pkgJson.name}@${pkgJson.version}`,
  features,
  wasmBindgen: cliVersion,
  wasmOpt: wasmOptVersion,
  wasmOptArgs: wasmOptVersion ? (wasmOpt.args ?? ["-Oz"]) : null,
  budget: { wasm_gzip_bytes: budget.wasm_gzip_bytes ?? null, total_gzip_bytes: budget.total_gzip_bytes ?? null },
  files: measured,
  total,
  optional,
  maps: { files: maps, total: { ...mapsTotal, file: "total" } },
  builtAt: new Date().toISOString(),
};
mkdirSync(path.join(ROOT, "target"), { recursive: true });
writeFileSync(path.join(ROOT, "target/wharf-sizes.json"), `${JSON.stringify(report, null, 2)}\n`);
console.log("(written to target/wharf-sizes.json)");

const over = [];
if (budget.wasm_gzip_bytes != null && measured[0].gzip > budget.wasm_gzip_bytes) {
  over.push(`wasm gzip ${measured[0].gzip} B > budget ${budget.wasm_gzip_bytes} B`);
}
if (budget.total_gzip_bytes != null && total.gzip > budget.total_gzip_bytes) {
  over.push(`total gzip ${total.gzip} B > budget ${budget.total_gzip_bytes} B`);
}
if (over.length) fail(`size budget exceeded (wasm-pack.toml [budget]): ${over.join("; ")}`);
console.log(`\nbuild: ok, ${rel(outDir)}/ ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);

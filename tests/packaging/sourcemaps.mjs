// Source-map test of the package's JavaScript: proves that every minified file the package ships
// links a map, that each map is a valid version-3 map, and that its positions lead back to the
// repository's original files and lines. It exists because a map can be present and still be
// useless: sources named after files that do not exist, no embedded text (node_modules has no
// src/), or mappings that are off by a line. scripts/build.mjs writes the maps (step 5).
//
// For each .js/.mjs file of the package directory:
//   1. it ends with `//# sourceMappingURL=<file>.map`, and that map is in the package;
//   2. the map is JSON with version 3, `sources`, `names` and a `sourcesContent` text per source;
//      every segment of `mappings` decodes (base64 VLQ, decoded here: no dependency) to a
//      generated column inside its line, a source, original line and column inside that source's
//      text, and a name that exists; every source is mapped to at least once;
//   3. each source is either a file of this repository (resolved from pkg/, where the package is
//      built) whose text equals the embedded one, or wasm-bindgen's generated glue
//      ("wasm-bindgen/..."), which has no file here;
//   4. probes: every string literal of at least 8 characters that occurs once in the original
//      texts and once in the minified file is looked up at its minified position, and the map must
//      answer its original file and line. Each file with a repository source needs at least one
//      probe, and the glue bundle at least one per snippet.
// Usage: node tests/packaging/sourcemaps.mjs [package dir, default pkg/]   (run.mjs runs it on the
// unpacked tarball). Exit code 0 when every check passed, 1 otherwise.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Where the build writes the package: the maps' repository-relative sources resolve from here. */
const BUILT_AT = path.join(REPO_ROOT, "pkg");
/** The name scripts/build.mjs gives sources that wasm-bindgen generated. */
const GENERATED = "wasm-bindgen/";

class MapError extends Error {}
const check = (condition, message) => {
  if (!condition) throw new MapError(message);
};

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGIT = new Map([...BASE64].map((c, i) => [c, i]));

/** One segment's fields: base64 VLQ numbers (5 bits a digit, continuation bit 32, sign in bit 0). */
function decodeVlq(text, where) {
  const values = [];
  let value = 0;
  let shift = 0;
  for (const c of text) {
    const digit = DIGIT.get(c);
    check(digit !== undefined, `${where}: "${c}" is not a base64 digit`);
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    values.push(value & 1 ? -Math.floor(value / 2) : value / 2);
    value = 0;
    shift = 0;
  }
  check(shift === 0, `${where}: a number is cut short`);
  return values;
}

/**
 * `mappings` as absolute segments per generated line: { column, source, line, sourceColumn, name }
 * (source and the rest undefined for a segment that maps nowhere). Lines and columns are 0-based.
 */
export function decodeMappings(mappings) {
  const state = { source: 0, line: 0, sourceColumn: 0, name: 0 };
  return mappings.split(";").map((group, generatedLine) => {
    let column = 0;
    return (group === "" ? [] : group.split(",")).map((segment, i) => {
      const where = `mappings line ${generatedLine + 1} segment ${i + 1}`;
      const fields = decodeVlq(segment, where);
      check([1, 4, 5].includes(fields.length), `${where}: ${fields.length} fields (1, 4 or 5 expected)`);
      column += fields[0];
      if (fields.length === 1) return { column };
      state.source += fields[1];
      state.line += fields[2];
      state.sourceColumn += fields[3];
      if (fields.length === 5) state.name += fields[4];
      return { column, source: state.source, line: state.line, sourceColumn: state.sourceColumn, name: fields.length === 5 ? state.name : undefined };
    });
  });
}

/** The segment that covers a generated position: the last one at or before it on its line. */
export function originalPosition(decoded, line, column) {
  const segments = decoded[line] ?? [];
  let found;
  for (const s of segments) if (s.column <= column) found = s;
  return found?.source === undefined ? null : found;
}

/** 0-based line and column of a text offset. */
function position(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length - 1;
  return { line, column: offset - (before.lastIndexOf("\n") + 1) };
}

/** A regular expression for `word` as a whole identifier-like word. */
const wordPattern = (word, flags = "") => new RegExp(`(?<![\\w$])${word.replaceAll("$", "\\$")}(?![\\w$])`, flags);
const count = (text, word) => text.match(wordPattern(word, "g"))?.length ?? 0;

/**
 * Probes of a minified file: words of 6+ characters (names and words of strings) that occur once
 * in all the map's original texts and once in the minified code, where minifying kept them
 * (property names, globals, string texts), with their minified position and original source and
 * line. Left out: export and namespace bindings (`x as name`, `name:()=>x`), which esbuild maps to
 * the statement or module that holds them rather than to the word.
 */
function probes(code, sourcesContent) {
  const everywhere = sourcesContent.join("\n");
  const found = [];
  sourcesContent.forEach((text, source) => {
    for (const word of new Set(text.match(/[A-Za-z_$][\w$]{5,}/g) ?? [])) {
      if (count(everywhere, word) !== 1 || count(code, word) !== 1) continue;
      const at = code.search(wordPattern(word));
      if (/\bas\s*$/.test(code.slice(Math.max(0, at - 4), at)) || /^\s*(?:as\b|:\s*\(\)\s*=>)/.test(code.slice(at + word.length, at + word.length + 8))) continue;
      found.push({ word, generated: position(code, at), source, line: position(text, text.search(wordPattern(word))).line });
    }
  });
  return found;
}

/** Checks the map of one generated file (package-relative `file`); returns a line for the log. */
function checkFile(dir, file) {
  const code = readFileSync(path.join(dir, file), "utf8");
  const link = /\n\/\/# sourceMappingURL=([^\s]+)\n?$/.exec(code);
  check(link, `${file} does not end with a //# sourceMappingURL= comment`);
  const mapFile = path.join(path.dirname(file), link[1]);
  check(link[1] === `${path.basename(file)}.map` && existsSync(path.join(dir, mapFile)), `${file} links ${link[1]}, which is not ${path.basename(file)}.map in the package`);
  let map;
  try {
    map = JSON.parse(readFileSync(path.join(dir, mapFile), "utf8"));
  } catch (error) {
    throw new MapError(`${mapFile} is not JSON: ${error.message}`);
  }
  check(map.version === 3, `${mapFile}: version ${map.version}, not 3`);
  check(Array.isArray(map.sources) && map.sources.length > 0, `${mapFile}: no sources`);
  check(Array.isArray(map.names), `${mapFile}: no names array`);
  check(
    Array.isArray(map.sourcesContent) && map.sourcesContent.length === map.sources.length && map.sourcesContent.every((t) => typeof t === "string" && t.length > 0),
    `${mapFile}: sourcesContent must hold the text of each of its ${map.sources.length} sources (node_modules has no src/)`,
  );

  // 3. the sources: files of this repository with the embedded text, or wasm-bindgen's glue.
  const repoSources = new Set();
  map.sources.forEach((source, i) => {
    if (source.startsWith(GENERATED)) return;
    const original = path.resolve(BUILT_AT, path.dirname(file), source);
    const inRepo = path.relative(REPO_ROOT, original);
    check(!inRepo.startsWith("..") && existsSync(original), `${mapFile}: source ${source} is no file of the repository (resolved from pkg/: ${original})`);
    check(readFileSync(original, "utf8") === map.sourcesContent[i], `${mapFile}: the embedded text of ${source} is not ${inRepo}'s`);
    repoSources.add(i);
  });

  // 2. every segment inside the generated line and the original text.
  const decoded = decodeMappings(map.mappings);
  const generatedLines = code.split("\n");
  const sourceLines = map.sourcesContent.map((t) => t.split("\n"));
  const used = new Set();
  let segments = 0;
  decoded.forEach((line, l) => {
    for (const s of line) {
      segments++;
      const where = `${mapFile}: generated ${l + 1}:${s.column}`;
      check(l < generatedLines.length && s.column < generatedLines[l].length, `${where} is past the end of ${file}'s line`);
      if (s.source === undefined) continue;
      check(s.source >= 0 && s.source < map.sources.length, `${where} names source #${s.source}, of ${map.sources.length}`);
      check(s.line >= 0 && s.line < sourceLines[s.source].length, `${where} maps to line ${s.line + 1} of ${map.sources[s.source]}, which has ${sourceLines[s.source].length}`);
      check(s.sourceColumn >= 0 && s.sourceColumn <= sourceLines[s.source][s.line].length, `${where} maps past the end of ${map.sources[s.source]}:${s.line + 1}`);
      check(s.name === undefined || (s.name >= 0 && s.name < map.names.length), `${where} names name #${s.name}, of ${map.names.length}`);
      used.add(s.source);
    }
  });
  const unused = map.sources.filter((_, i) => !used.has(i));
  check(unused.length === 0, `${mapFile}: no segment maps to ${unused.join(", ")}`);

  // 4. probes: a word's minified position maps to its original file and line.
  const body = code.slice(0, link.index); // not the sourceMappingURL comment
  const perSource = new Map();
  const examples = [];
  for (const probe of probes(body, map.sourcesContent)) {
    const found = originalPosition(decoded, probe.generated.line, probe.generated.column);
    const label = `${file}:${probe.generated.line + 1}:${probe.generated.column + 1} ("${probe.word}")`;
    check(found, `${label} maps to nothing`);
    check(found.source === probe.source, `${label} maps to ${map.sources[found.source]}, not ${map.sources[probe.source]}`);
    check(found.line === probe.line, `${label} maps to ${map.sources[probe.source]}:${found.line + 1}, not line ${probe.line + 1}`);
    if (!perSource.has(probe.source)) examples.push(`"${probe.word}" at ${file}:${probe.generated.line + 1}:${probe.generated.column + 1} -> ${map.sources[probe.source]}:${probe.line + 1}`);
    perSource.set(probe.source, (perSource.get(probe.source) ?? 0) + 1);
  }
  const unprobed = map.sources.filter((_, i) => !perSource.get(i));
  check(unprobed.length === 0, `${mapFile}: nothing to probe in ${unprobed.join(", ")} (the test needs a probe per source)`);
  const probeCount = [...perSource.values()].reduce((a, b) => a + b, 0);
  return `${file} -> ${mapFile}: ${map.sources.length} sources (${repoSources.size} repository files, ${map.sources.length - repoSources.size} generated), ${segments} segments, ${probeCount} probes mapped to their original file and line, e.g.\n    ${examples.join("\n    ")}`;
}

/** Checks every .js/.mjs file under `dir`; throws a MapError on the first problem. */
export function checkSourceMaps(dir) {
  const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  const files = walk(dir).map((f) => path.relative(dir, f).split(path.sep).join("/")).filter((f) => /\.m?js$/.test(f)).sort();
  check(files.length > 0, `no JavaScript in ${dir}`);
  const lines = files.map((f) => checkFile(dir, f));
  const strays = walk(dir).filter((f) => f.endsWith(".map") && !existsSync(f.slice(0, -4)));
  check(strays.length === 0, `maps of no file: ${strays.join(", ")}`);
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const dir = path.resolve(process.argv[2] ?? BUILT_AT);
  try {
    for (const line of checkSourceMaps(dir)) console.log(line);
    console.log("\nsourcemaps: all checks passed");
  } catch (error) {
    console.error(`sourcemaps: FAILED: ${error instanceof MapError ? error.message : error?.stack ?? error}`);
    process.exit(1);
  }
}

// Builds the demo PWA into www/dist the way a user's app gets wharf: `npm pack` the built package
// (pkg/), install that tarball into www/node_modules, type-check, `vite build`. Used by
// scripts/demo.sh (which then starts the server) and by the end-to-end tests (buildDemo()).
// Each step is skipped when its inputs are unchanged, so a warm run takes about a second:
//   npm ci            when package-lock.json changed (stamp: node_modules/.wharf-demo-deps)
//   npm pack + install when pkg/ changed              (stamp: node_modules/.wharf-demo-pkg)
//   tsc + vite build  when the sources or the installed package changed (stamp: dist/.wharf-demo-build)
// The tarball is installed with --no-save: package.json and package-lock.json stay untouched (the
// tarball's integrity changes with every build), and `npm ci` would remove it again, so it runs first.
// CLI: node www/tools/build-demo.mjs [--pkg DIR] [--force]   |   --print-server-flags
// Concurrent runs (test files run in parallel) wait for each other through a lock directory.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WWW = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = path.dirname(WWW);
export const DIST = path.join(WWW, "dist");
const PACK_DIR = path.join(REPO_ROOT, "target", "demo");
const LOCK = path.join(PACK_DIR, ".build-lock");

/**
 * How the demo runs the reference server (besides --addr, --www and --pkg): fault injection
 * configured but paused until the "flaky server" toggle, and pushes carrying `poison` refused
 * while it is on. Seed 7's schedule starts with a lost answer and a failure, so the toggle shows
 * retries (and a duplicate answer) within the first few pushes.
 */
export const SERVER_FLAGS = Object.freeze([
  "--faults",
  "--faults-paused",
  "--fail-rate",
  "0.3",
  "--latency-ms",
  "200",
  "--drop-after-apply-rate",
  "0.1",
  "--fault-seed",
  "7",
  "--reject-batches-with",
  "poison",
]);

const log = (message) => process.stderr.write(`demo: ${message}\n`);
const sha256 = (...parts) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
};
const readStamp = (file) => (existsSync(file) ? readFileSync(file, "utf8").trim() : null);

/** Runs a command; its output goes to stderr (stdout is the test runner's), or nowhere if `quiet`. */
function run(command, args, cwd = WWW, { quiet = false } = {}) {
  const result = spawnSync(command, args, { cwd, stdio: ["ignore", quiet ? "ignore" : 2, 2], env: process.env });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (exit ${result.status ?? result.signal}) in ${cwd}`);
}

/** Every source file of the app (not node_modules, dist or these tools), for the build stamp. */
function sourceHash() {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (dir === WWW && ["node_modules", "dist", "tools", "README.md"].includes(entry.name)) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.push(full);
    }
  };
  walk(WWW);
  files.sort();
  return sha256(...files.flatMap((file) => [path.relative(WWW, file), "\0", readFileSync(file), "\0"]));
}

async function withLock(fn) {
  mkdirSync(PACK_DIR, { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(path.join(LOCK, "pid"), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== "EEXIST") throw error;
      const owner = Number(readStamp(path.join(LOCK, "pid")));
      let alive = true;
      try {
        if (owner) process.kill(owner, 0);
      } catch {
        alive = false;
      }
      if (!alive) rmSync(LOCK, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`${LOCK} is held by pid ${owner} for too long`);
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/**
 * Builds www/dist if anything changed. `pkg` is the built package folder (default: $WHARF_PKG_DIR,
 * else pkg/).
 * @returns {Promise<{ dist: string, tarball: string, built: boolean }>}
 */
export async function buildDemo({ pkg = process.env.WHARF_PKG_DIR || path.join(REPO_ROOT, "pkg"), force = false } = {}) {
  for (const file of ["package.json", "index.js", "react.js"]) {
    if (!existsSync(path.join(pkg, file))) {
      throw new Error(`${path.join(pkg, file)} is missing: build the package first (node scripts/build.mjs)`);
    }
  }
  return withLock(() => {
    const modules = path.join(WWW, "node_modules");
    // 1. The app's own dependencies (React, Vite, TypeScript), exactly as locked.
    const depsStamp = path.join(modules, ".wharf-demo-deps");
    const lockHash = sha256(readFileSync(path.join(WWW, "package-lock.json")));
    if (force || readStamp(depsStamp) !== lockHash) {
      log("npm ci (www/)");
      run("npm", ["ci", "--no-audit", "--no-fund"]);
      writeFileSync(depsStamp, lockHash);
    }

    // 2. The package as it would be published: npm pack, then install the tarball.
    const { version } = JSON.parse(readFileSync(path.join(pkg, "package.json"), "utf8"));
    mkdirSync(PACK_DIR, { recursive: true });
    const tarball = path.join(PACK_DIR, `wharf-${version}.tgz`);
    rmSync(tarball, { force: true });
    run("npm", ["pack", pkg, "--pack-destination", PACK_DIR, "--loglevel", "warn"], REPO_ROOT, { quiet: true });
    if (!existsSync(tarball)) throw new Error(`npm pack did not write ${tarball}`);
    const pkgStamp = path.join(modules, ".wharf-demo-pkg");
    const tarballHash = sha256(readFileSync(tarball));
    if (force || readStamp(pkgStamp) !== tarballHash || !existsSync(path.join(modules, "wharf", "package.json"))) {
      log(`npm install --no-save ${path.relative(WWW, tarball)}`);
      run("npm", ["install", "--no-save", "--no-audit", "--no-fund", tarball]);
      writeFileSync(pkgStamp, tarballHash);
    }

    // 3. Type-check against the package's types, then bundle.
    const buildStamp = path.join(DIST, ".wharf-demo-build");
    const buildHash = sha256(sourceHash(), lockHash, tarballHash);
    let built = false;
    if (force || readStamp(buildStamp) !== buildHash || !existsSync(path.join(DIST, "index.html"))) {
      log("tsc --noEmit && vite build");
      run(path.join(modules, ".bin", "tsc"), ["--noEmit", "-p", WWW]);
      run(path.join(modules, ".bin", "vite"), ["build", "--logLevel", "warn"]);
      writeFileSync(buildStamp, buildHash);
      built = true;
    } else {
      log("www/dist is up to date");
    }
    return { dist: DIST, tarball, built };
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.includes("--print-server-flags")) {
    process.stdout.write(`${SERVER_FLAGS.join("\n")}\n`);
  } else {
    const at = args.indexOf("--pkg");
    const pkg = at >= 0 ? path.resolve(args[at + 1]) : undefined;
    const started = Date.now();
    const { dist, built } = await buildDemo({ pkg, force: args.includes("--force") });
    log(`${built ? "built" : "kept"} ${path.relative(process.cwd(), dist) || dist} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
}

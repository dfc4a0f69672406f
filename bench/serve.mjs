// How a benchmark page reaches its files on the reference server's origin (so that `sync: { url:
// location.origin }` works): Playwright answers `<url>/<prefix>/` itself, with the page's own
// files from bench/ and each build's package files, cross-origin isolated.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT } from "../tests/e2e/helpers.mjs";

const BENCH_DIR = path.join(REPO_ROOT, "bench");
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json" };
// Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
const ISOLATION = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

/**
 * Serves `<url>/<prefix>/<page>.*` from bench/ (files whose name starts with `page`) and
 * `<url>/<prefix>/<name>/<file>` from `dirs[name]` (a package directory).
 */
export async function servePages(context, url, prefix, page, dirs) {
  await context.route(`${url}/${prefix}/**`, async (route) => {
    const parts = new URL(route.request().url()).pathname.split("/").slice(2); // after /<prefix>/
    const file =
      parts.length === 1 && parts[0].startsWith(`${page}.`)
        ? path.join(BENCH_DIR, parts[0])
        : parts[0] in dirs && parts.length === 2 && !parts[1].includes("..")
          ? path.join(dirs[parts[0]], parts[1])
          : null;
    if (!file || !existsSync(file)) return route.fulfill({ status: 404, body: "not found" });
    return route.fulfill({ status: 200, contentType: TYPES[path.extname(file)] ?? "application/octet-stream", headers: ISOLATION, body: await readFile(file) });
  });
}

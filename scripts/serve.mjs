// Tiny dependency-free static server for the end-to-end tests and the benchmark, which need only
// static files and start it in process (the demo runs on the Rust reference server, server/):
// www/ at /, pkg/ (the built package) at /pkg/, on 127.0.0.1 only, never cached,
// with the MIME types browsers insist on (application/wasm for streaming compilation, text/javascript
// for modules) and no way out of those two folders.
// CLI:    node scripts/serve.mjs [--port 8080]   (--port 0 picks a free port)
// Module: const { port, url, close } = await startServer({ port: 0, root: repoRoot });

import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const HOST = "127.0.0.1";

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
};

function send(res, status, message, extraHeaders = {}) {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", ...extraHeaders });
  res.end(`${status} ${message}\n`);
}

/** Maps a URL path to a file inside one of the mounts, or returns an HTTP status to answer with. */
async function resolveFile(mounts, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return 400;
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return 400;
  const mount = mounts.find((m) => decoded === m.prefix.slice(0, -1) || decoded.startsWith(m.prefix));
  if (!mount) return 404;
  if (decoded === mount.prefix.slice(0, -1)) return { redirect: mount.prefix };
  const base = path.resolve(mount.dir);
  let file = path.resolve(base, `.${decoded.slice(mount.prefix.length - 1)}`);
  if (file !== base && !file.startsWith(base + path.sep)) return 403;
  try {
    // Symbolic links must not lead out of the mount either.
    const [realBase, realFile] = await Promise.all([realpath(base), realpath(file)]);
    if (realFile !== realBase && !realFile.startsWith(realBase + path.sep)) return 403;
    let info = await stat(realFile);
    if (info.isDirectory()) {
      file = path.join(realFile, "index.html");
      info = await stat(file);
    } else {
      file = realFile;
    }
    return info.isFile() ? { file, size: info.size } : 404;
  } catch {
    return 404;
  }
}

/**
 * Starts the server. Resolves once it listens, with the actual port (useful with port 0).
 * @param {{ port?: number, root?: string, host?: string }} [options] root: the repository root
 * @returns {Promise<{ server: http.Server, port: number, url: string, close(): Promise<void> }>}
 */
export async function startServer({ port = 8080, root = REPO_ROOT, host = HOST } = {}) {
  const mounts = [
    { prefix: "/pkg/", dir: path.join(root, "pkg") },
    { prefix: "/", dir: path.join(root, "www") },
  ];
  const server = http.createServer(async (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "Method Not Allowed", { Allow: "GET, HEAD" });
    const urlPath = new URL(req.url ?? "/", "http://localhost").pathname;
    const found = await resolveFile(mounts, urlPath);
    if (typeof found === "number") {
      const text = { 400: "Bad Request", 403: "Forbidden", 404: "Not Found" }[found];
      return send(res, found, text);
    }
    if (found.redirect) return send(res, 301, "Moved Permanently", { Location: found.redirect });
    res.writeHead(200, {
      "Content-Type": MIME[path.extname(found.file).toLowerCase()] ?? "application/octet-stream",
      "Content-Length": found.size,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(found.file)
      .on("error", () => res.destroy())
      .pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  return {
    server,
    port: actualPort,
    url: `http://${host}:${actualPort}/`,
    close: () =>
      new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections(); // keep-alive sockets would otherwise hold close() open
      }),
  };
}

function parsePort(argv) {
  const i = argv.findIndex((a) => a === "--port" || a.startsWith("--port="));
  if (i === -1) return 8080;
  const value = argv[i].includes("=") ? argv[i].split("=")[1] : argv[i + 1];
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve.mjs: invalid --port ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return port;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { url, close } = await startServer({ port: parsePort(process.argv.slice(2)) }).catch((error) => {
    console.error(`serve.mjs: cannot listen: ${error.message}`);
    process.exit(1);
  });
  console.log(`Wharf demo: ${url}`);
  const stop = () => close().finally(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

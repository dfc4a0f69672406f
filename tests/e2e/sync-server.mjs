// Starts the real reference server (target/debug/wharf-server, built by scripts/test.sh) for the
// end-to-end sync tests: on 127.0.0.1 and a free port, serving pkg/ at /pkg, in-memory SQLite,
// with the fault-injection flags a test asks for. `state()` reads GET /debug/state (only there
// with --faults, which every instance here gets, at rate 0 unless a test sets one). The folder
// served at / is www/public by default: the demo app's static files that need no build (the
// examples under /examples/); the demo tests pass the built app, www/dist.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "./helpers.mjs";

export const SERVER_BIN = process.env.WHARF_SERVER_BIN || path.join(REPO_ROOT, "target", "debug", "wharf-server");

/**
 * @param {string[]} flags extra command-line flags, e.g. ["--fail-rate", "0.2"]
 * @param {{ addr?: string, www?: string }} options a fixed address, to restart a server where
 *   clients expect it; the folder served at / instead of www/public (test fixtures, www/dist)
 * @returns {Promise<{ url: string, state(): Promise<any>, setFaults(enabled: boolean): Promise<void>,
 *   log: string[], close(): Promise<void> }>}
 */
export async function startSyncServer(flags = [], { addr = "127.0.0.1:0", www = path.join(REPO_ROOT, "www", "public") } = {}) {
  if (!existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: run cargo build -p wharf-server`);
  const args = ["--addr", addr, "--www", www, "--pkg", path.join(REPO_ROOT, "pkg"), "--faults", ...flags];
  const child = spawn(SERVER_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  const log = [];
  child.stderr.on("data", (chunk) => log.push(String(chunk)));
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`wharf-server did not start: ${out}${log.join("")}`)), 15_000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /Wharf server: (http:\/\/[^/\s]+)\//.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`wharf-server exited with ${code}: ${log.join("")}`));
    });
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  // With --token, the debug routes want the token too.
  const token = flags.includes("--token") ? flags[flags.indexOf("--token") + 1] : undefined;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  return {
    url,
    log,
    async state() {
      const response = await fetch(`${url}/debug/state`, { headers });
      if (!response.ok) throw new Error(`GET /debug/state: ${response.status}`);
      return response.json();
    },
    async setFaults(enabled) {
      const response = await fetch(`${url}/debug/faults`, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify({ enabled }),
      });
      if (!response.ok) throw new Error(`POST /debug/faults: ${response.status}`);
    },
    /** Deletes tombstones older than `beforeCursor`; older cursors then get 410. */
    async compact(beforeCursor) {
      const response = await fetch(`${url}/debug/compact`, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify({ beforeCursor }),
      });
      if (!response.ok) throw new Error(`POST /debug/compact: ${response.status}`);
      return response.json();
    },
    async close() {
      child.kill("SIGINT");
      await exited;
    },
  };
}

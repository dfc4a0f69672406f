// The reference server for the chaos suite: target/debug/wharf-server (as tests/e2e/sync-server.mjs
// starts it) on a fixed loopback address with a SQLite file, so that it can be stopped (SIGINT, or
// SIGKILL as a crash) and started again where the clients expect it, on the same data. The
// counters of GET /debug/state that live in memory (pushes, duplicates) are summed over the
// instances; `applied` and the records are read from the file and survive restarts.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { REPO_ROOT } from "../e2e/helpers.mjs";
import { SERVER_BIN } from "../e2e/sync-server.mjs";

/** A free loopback port (there is a small window in which another process could take it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * @param {{ port: number, database: string, www: string, calmFlags: string[] }} options
 */
/**
 * Spawns `command` and resolves once its stdout matches `ready` (15 s at most): `{ proc, exited }`,
 * `exited` settling when it exits. Its stderr goes to `log` (the last 200 chunks), and into the
 * error when it does not start.
 */
export function spawnReady(command, args, { name, ready, log }) {
  const proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  proc.stderr.on("data", (chunk) => {
    lines.push(String(chunk));
    log.push(String(chunk));
    if (log.length > 200) log.shift();
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${name} did not start: ${out}${lines.join("")}`));
    }, 15_000);
    proc.stdout.on("data", (chunk) => {
      out += chunk;
      if (ready.test(out)) {
        clearTimeout(timer);
        const exited = new Promise((done) => (proc.exitCode !== null ? done() : proc.on("exit", done)));
        resolve({ proc, exited });
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${lines.join("")}`));
    });
  });
}

export function chaosServer({ port, database, www, calmFlags }) {
  if (!existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: run cargo build -p wharf-server`);
  const url = `http://127.0.0.1:${port}`;
  let child = null;
  let exited = null;
  const totals = { pushes: 0, duplicates: 0, instances: 0 };
  const log = [];

  async function start(extraFlags = []) {
    const args = ["--addr", `127.0.0.1:${port}`, "--database", database, "--www", www, "--pkg", path.join(REPO_ROOT, "pkg"), "--faults", ...calmFlags, ...extraFlags];
    // The port may linger for a moment after a kill: retry a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        await spawnOnce(args);
        totals.instances++;
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async function spawnOnce(args) {
    ({ proc: child, exited } = await spawnReady(SERVER_BIN, args, { name: "wharf-server", ready: /Wharf server: http:\/\//, log }));
  }

  async function state() {
    const response = await fetch(`${url}/debug/state`);
    if (!response.ok) throw new Error(`GET /debug/state: ${response.status}`);
    return response.json();
  }

  /** Stops the running instance (adding its in-memory counters to the totals). */
  async function stop(signal = "SIGINT") {
    if (!child) return;
    try {
      const s = await state();
      totals.pushes += s.pushes;
      totals.duplicates += s.duplicates;
    } catch {
      // A dead instance has nothing to add.
    }
    child.kill(signal);
    await exited;
    child = null;
  }

  return {
    url,
    log,
    totals,
    start,
    stop,
    state,
    running: () => child !== null,
    async restart(extraFlags = [], { signal = "SIGINT", downMs = 0 } = {}) {
      await stop(signal);
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await start(extraFlags);
    },
    async setFaults(enabled) {
      const response = await fetch(`${url}/debug/faults`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ enabled }),
      });
      if (!response.ok) throw new Error(`POST /debug/faults: ${response.status}`);
    },
    /** The state with pushes and duplicates summed over every instance so far. */
    async totalState() {
      const s = await state();
      return { ...s, pushes: totals.pushes + s.pushes, duplicates: totals.duplicates + s.duplicates };
    },
  };
}

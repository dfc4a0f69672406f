// The reference server's fault injection (`wharf-server --faults`), which the "flaky server"
// toggle drives: POST /debug/faults {"enabled": bool}. The server has no way to read the switch
// back, so the last choice is remembered in localStorage (shared by the tabs of the origin, which
// follow each other's changes) and re-applied when a page loads, in case the server restarted.
// One store per page, so every component that shows the switch agrees.
import { useSyncExternalStore } from "react";

const KEY = "wharf-demo:flaky-server";

export interface ServerFaults {
  /** "missing": the server runs without --faults (GET /debug/state is 404). */
  availability: "checking" | "available" | "missing" | "unreachable";
  enabled: boolean;
  error: string | null;
}

let current: ServerFaults = { availability: "checking", enabled: localStorage.getItem(KEY) === "true", error: null };
const listeners = new Set<() => void>();
let started = false;

function update(change: Partial<ServerFaults>) {
  current = { ...current, ...change };
  listeners.forEach((listener) => listener());
}

async function post(enabled: boolean): Promise<void> {
  const response = await fetch("/debug/faults", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ enabled }),
  });
  if (!response.ok) throw new Error(`POST /debug/faults answered ${response.status}`);
}

async function check() {
  try {
    const response = await fetch("/debug/state");
    update({ availability: response.ok ? "available" : "missing" });
    if (response.ok && current.enabled) await post(true);
  } catch {
    update({ availability: "unreachable" }); // asked again when the browser is back online
  }
}

function start() {
  window.addEventListener("storage", (event: StorageEvent) => event.key === KEY && update({ enabled: event.newValue === "true" }));
  window.addEventListener("online", () => current.availability === "unreachable" && void check());
  void check();
}

export async function setServerFaults(enabled: boolean): Promise<void> {
  update({ error: null });
  try {
    await post(enabled);
    localStorage.setItem(KEY, String(enabled));
    update({ enabled });
  } catch (failure) {
    update({ error: failure instanceof Error ? failure.message : String(failure) });
  }
}

export function useServerFaults(): ServerFaults {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      if (!started) {
        started = true;
        start();
      }
      return () => listeners.delete(listener);
    },
    () => current,
  );
}

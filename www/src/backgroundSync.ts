// After each local write the page asks for Background Sync (db.registerBackgroundSync()), so the
// service worker (sw.ts) pushes what is queued even if every tab closes first. Not while this tab
// is paused ("Work offline"): the browser is online, so the worker would drain at once and the
// pause would mean nothing. The last answer is kept for the info panel.
import { useSyncExternalStore } from "react";
import type { Database } from "wharf";

type Answer = "registered" | "unsupported" | "not asked yet" | `failed: ${string}`;

let last: Answer = "not asked yet";
const listeners = new Set<() => void>();

export async function requestBackgroundSync(db: Database): Promise<void> {
  if (db.syncStatus?.state === "paused") return;
  try {
    last = await db.registerBackgroundSync();
  } catch (error) {
    last = `failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  listeners.forEach((listener) => listener());
}

export function useBackgroundSyncAnswer(): Answer {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => last,
  );
}

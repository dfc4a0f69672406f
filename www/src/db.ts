// The one place that says how the demo opens its database: the page (main.tsx) and the service
// worker (sw.ts) must pass the same options, sync options included, so that they coordinate as
// contexts of one database (see "Tabs, workers and the service worker" in the README).
import type { OpenOptions } from "wharf";

export interface Todo {
  id: string;
  title: string;
  done: boolean;
  /** Milliseconds since the epoch; the list is read in this order (index by_created). */
  createdAt: number;
  /** Set by the "poison" checkbox: the demo server refuses pushes carrying it (a dead letter). */
  poison?: boolean;
}

export const DB_NAME = "wharf-demo";
export const TODOS = "todos";
export const BY_CREATED = { index: "by_created" } as const;

export function openOptions(origin: string): OpenOptions {
  return {
    name: DB_NAME,
    collections: [{ name: TODOS, keyPath: "id", indexes: [{ name: "by_created", keyPath: "createdAt" }] }],
    persist: true, // pages only; a service worker skips it
    sync: {
      url: origin,
      conflicts: "lww",
      // Short enough that the flaky server visibly retries and converges within seconds.
      retry: { baseMs: 500, maxMs: 10_000, maxAttempts: 10 },
    },
  };
}

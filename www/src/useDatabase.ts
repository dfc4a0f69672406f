// Opens the demo database once per page (module scope, so StrictMode's double effects and
// re-renders never open it twice), registers the service worker, and exposes both to the
// console as `wharfDemo` (handy in devtools; the end-to-end tests read it too).
import { useEffect, useState } from "react";
import { Wharf, type Collection, type Database } from "wharf";
import { openOptions, TODOS, type Todo } from "./db";
// Vite bundles the worker (with wharf and its WebAssembly) and gives back its URL, /sw.js.
import serviceWorkerUrl from "./sw.ts?worker&url";

export interface DemoDatabase {
  db: Database;
  todos: Collection<Todo>;
}

export type ServiceWorkerState = { kind: "pending" } | { kind: "ready" } | { kind: "unavailable"; reason: string };

declare global {
  interface Window {
    wharfDemo?: DemoDatabase;
  }
}

let opening: Promise<DemoDatabase> | null = null;

function openOnce(): Promise<DemoDatabase> {
  opening ??= Wharf.open(openOptions(location.origin)).then((db) => {
    const demo = { db, todos: db.collection<Todo>(TODOS) };
    window.wharfDemo = demo;
    return demo;
  });
  return opening;
}

async function registerServiceWorker(): Promise<ServiceWorkerState> {
  if (!("serviceWorker" in navigator)) return { kind: "unavailable", reason: "no service workers here" };
  try {
    await navigator.serviceWorker.register(serviceWorkerUrl, { type: "module", scope: "/" });
    await navigator.serviceWorker.ready;
    return { kind: "ready" };
  } catch (error) {
    return { kind: "unavailable", reason: error instanceof Error ? error.message : String(error) };
  }
}

/** The open database (null while opening), the error if opening failed, and the worker's state. */
export function useDatabase() {
  const [demo, setDemo] = useState<DemoDatabase | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [worker, setWorker] = useState<ServiceWorkerState>({ kind: "pending" });
  useEffect(() => {
    let live = true;
    openOnce().then(
      (opened) => live && setDemo(opened),
      (failure) => live && setError(failure),
    );
    registerServiceWorker().then((state) => live && setWorker(state));
    return () => {
      live = false;
    };
  }, []);
  return { demo, error, worker };
}

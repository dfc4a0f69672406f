// Fixture app of tests/packaging/run.mjs: a user's Vite app that imports the installed wharf
// tarball by its bare name, built by `vite build` with no config and no plugin. It opens a synced
// database, writes one note and syncs it, then registers a module service worker (src/sw.js, which
// imports wharf too) and asks it to write and sync one more. The outcome goes to
// window.wharfPackaging and #status, for the test to read.
import { Wharf } from "wharf";
// Vite bundles `?worker&url` imports as a worker entry (with its imports) and returns its URL;
// a plain `new URL("./sw.js", import.meta.url)` would copy sw.js unbundled, bare import and all.
import serviceWorkerUrl from "./sw.js?worker&url";

const NAME = "packaging-vite";
const COLLECTIONS = [{ name: "notes", keyPath: "id" }];

/** The registration's worker once it is activated (its scope, /assets/, does not cover this page). */
async function activated(registration) {
  const worker = registration.active ?? registration.waiting ?? registration.installing;
  while (worker.state !== "activated") {
    if (worker.state === "redundant") throw new Error("the service worker became redundant");
    await new Promise((resolve) => worker.addEventListener("statechange", resolve, { once: true }));
  }
  return worker;
}

function ask(worker, message) {
  const channel = new MessageChannel();
  const answer = new Promise((resolve) => (channel.port1.onmessage = (event) => resolve(event.data)));
  worker.postMessage(message, [channel.port2]);
  return answer;
}

async function main() {
  const db = await Wharf.open({ name: NAME, collections: COLLECTIONS, sync: { url: location.origin } });
  await db.collection("notes").put({ id: "vite-page", by: "vite page" });
  await db.sync();
  const page = { role: db.syncRole, outbox: await db.outbox.count() };

  const registration = await navigator.serviceWorker.register(serviceWorkerUrl, { type: "module" });
  const worker = await activated(registration);
  // A database of its own, so that the worker drains it (syncRole "leader") and pushes by itself.
  const serviceWorker = await ask(worker, { name: `${NAME}-worker`, collections: COLLECTIONS, id: "vite-sw" });
  if (serviceWorker.error) throw new Error(`service worker: ${serviceWorker.error}`);
  return { ok: true, page, serviceWorker, serviceWorkerUrl };
}

main().then(
  (result) => {
    window.wharfPackaging = result;
    document.getElementById("status").textContent = `synced ${JSON.stringify(result)}`;
  },
  (error) => {
    window.wharfPackaging = { ok: false, error: `${error?.code ?? ""} ${error?.stack ?? error}` };
    document.getElementById("status").textContent = `failed: ${window.wharfPackaging.error}`;
  },
);

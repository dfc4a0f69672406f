// Fixture service worker of tests/packaging/run.mjs: imports the installed wharf package by its
// bare name and is bundled by webpack from `navigator.serviceWorker.register(new URL("./sw.js",
// import.meta.url), { type: "module" })` in index.js. With default settings webpack emits it as a
// classic worker (it rewrites the option to { type: undefined } and loads the split-off chunk with
// importScripts), so this checks the package bundled into a classic service worker; the Vite app
// checks a module one. On a message `{ name, collections, id }` with a MessagePort it opens that
// database, writes note `id`, syncs, and answers
// `{ role, outbox, scriptType }` or `{ error }`.
import { Wharf } from "wharf";

// importScripts() with no URL is a no-op in a classic worker and a TypeError in a module worker.
const scriptType = (() => {
  try {
    importScripts();
    return "classic";
  } catch {
    return "module";
  }
})();

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

let db;

async function writeAndSync({ name, collections, id }) {
  db ??= await Wharf.open({ name, collections, sync: { url: self.location.origin } });
  await db.collection("notes").put({ id, by: "service worker" });
  await db.sync();
  return { role: db.syncRole, outbox: await db.outbox.count(), scriptType };
}

self.addEventListener("message", (event) => {
  const [port] = event.ports;
  const done = writeAndSync(event.data).then(
    (answer) => port.postMessage(answer),
    (error) => port.postMessage({ error: `${error?.code ?? ""} ${error?.stack ?? error}` }),
  );
  event.waitUntil(done);
});

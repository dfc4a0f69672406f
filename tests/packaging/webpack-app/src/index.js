// Fixture app of tests/packaging/run.mjs: a user's webpack 5 app, built by `webpack --mode
// production` with no webpack.config.js and no plugin (the default entry, ./src/index.js, and
// output, dist/main.js). It imports the installed wharf tarball by its bare name, opens a synced
// database, writes one note and syncs it, then registers a service worker (src/sw.js, which
// imports wharf too; webpack bundles it from the new URL below) and asks it to write and sync one
// more. The outcome goes to window.wharfPackaging and #status, for the test to read.
import { Wharf } from "wharf";

const NAME = "packaging-webpack";
const COLLECTIONS = [{ name: "notes", keyPath: "id" }];

/** The registration's worker once it is activated. */
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
  await db.collection("notes").put({ id: "webpack-page", by: "webpack page" });
  await db.sync();
  const page = { role: db.syncRole, outbox: await db.outbox.count() };

  // webpack recognises this call and bundles sw.js as a worker entry (see sw.js on its type).
  const registration = await navigator.serviceWorker.register(new URL("./sw.js", import.meta.url), { type: "module" });
  const worker = await activated(registration);
  // A database of its own, so that the worker drains it (syncRole "leader") and pushes by itself.
  const serviceWorker = await ask(worker, { name: `${NAME}-worker`, collections: COLLECTIONS, id: "webpack-sw" });
  if (serviceWorker.error) throw new Error(`service worker: ${serviceWorker.error}`);
  return { ok: true, page, serviceWorker, serviceWorkerUrl: worker.scriptURL };
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

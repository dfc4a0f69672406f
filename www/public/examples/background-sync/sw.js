// A module service worker that drains Wharf's outbox when the browser fires Background Sync,
// even with no page open. Register it with `{ type: "module" }`; pages queue writes as usual and
// call `db.registerBackgroundSync()` (see index.html next to this file).
import { Wharf, handleBackgroundSync } from "/pkg/index.js";

const options = {
  name: "background-sync-example",
  collections: [{ name: "todos", keyPath: "id" }],
  sync: { url: self.location.origin, live: false, pushIntervalMs: 0, pullIntervalMs: 0 },
};

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("sync", (event) => handleBackgroundSync(event, () => Wharf.open(options)));

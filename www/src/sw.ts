/// <reference lib="webworker" />
// The demo's module service worker, bundled by Vite (main.tsx imports it as `./sw.ts?worker&url`)
// with the wharf package, exactly as a user's app would. Two jobs:
// 1. Background Sync: when the browser fires the page's `wharf-sync` registration
//    (db.registerBackgroundSync()), open the database and drain the outbox, even with no tab open.
// 2. App shell: precache the built files (precache.json, written by vite.config.ts) so the app
//    opens offline; navigations go to the network first. Sync traffic (/push, /pull, /live,
//    /debug) is never touched.
import { Wharf, handleBackgroundSync } from "wharf";
import { openOptions } from "./db";

declare const self: ServiceWorkerGlobalScope;

const CACHE = "wharf-demo-shell-v1";
const SHELL = ["/", "/manifest.webmanifest", "/icons/icon-192.png", "/icons/icon-512.png"];

async function precache(): Promise<void> {
  const cache = await caches.open(CACHE);
  let built: string[] = [];
  try {
    const response = await fetch("/precache.json", { cache: "no-store" });
    if (response.ok) built = await response.json();
  } catch {
    // Offline while installing: the shell is cached as it is fetched instead.
  }
  await cache.addAll([...SHELL, ...built.map((file) => `/${file}`)]);
}

function isShell(url: URL): boolean {
  return SHELL.includes(url.pathname) || url.pathname.startsWith("/assets/");
}

async function networkFirst(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put("/", response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match("/");
    if (cached) return cached;
    throw error;
  }
}

async function cacheFirst(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (event.request.mode === "navigate" && (url.pathname === "/" || url.pathname === "/index.html")) {
    event.respondWith(networkFirst(event.request));
  } else if (isShell(url)) {
    event.respondWith(cacheFirst(event.request));
  }
});

self.addEventListener("sync", (event) => {
  handleBackgroundSync(event as SyncEvent, () => Wharf.open(openOptions(self.location.origin)));
});

interface SyncEvent extends ExtendableEvent {
  readonly tag: string;
}

// Wharf's entry under Node (the "node" export condition; bundlers building for browsers never pick
// it). Node's fetch cannot load a file: URL, so the browser entry's lazy `init()` would fail there:
// this entry reads the package's wasm from disk and instantiates it synchronously on import, then
// is the browser entry itself. Node has no IndexedDB: install one before opening a database
// (`import "fake-indexeddb/auto"`), as README.md's "Tests in Node (vitest)" shows.

import { readFileSync } from "node:fs";
import { initSync } from "./index.js";

initSync(readFileSync(new URL("./wharf_wasm_bg.wasm", import.meta.url)));

export * from "./index.js";

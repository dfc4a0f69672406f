// The package entry's panic guard (pkg/internal.js, from src/api/js/internal.js), in Node: a
// WebAssembly trap thrown by a method, a getter or a static method of a guarded class, or a
// promise of it rejecting with one, becomes a WharfError `INTERNAL` carrying the panic's message;
// every other error and value passes through untouched. That the module records the panic's
// message is checked in the browser suites (`a_panic_leaves_its_message_behind`).
// Run: node --test tests/e2e/internal.test.mjs  (needs pkg/ built).

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { REPO_ROOT, assertPkgBuilt } from "./helpers.mjs";

assertPkgBuilt();
const { surfacePanics } = await import(pathToFileURL(path.join(REPO_ROOT, "pkg", "internal.js")).href);

const trap = () => new WebAssembly.RuntimeError("unreachable");

class Store {
  static open(fail) {
    if (fail) throw trap();
    return new Store();
  }
  get broken() {
    throw trap();
  }
  put(value) {
    if (value === "trap") throw trap();
    if (value === "range") throw new RangeError("not a trap");
    return value;
  }
  async later(fail) {
    if (fail) throw trap();
    return "fine";
  }
  free() {
    throw trap(); // left alone: wasm-bindgen's own
  }
}

test("a trap becomes INTERNAL with the panic's message; everything else passes through", async () => {
  let panic = "panicked at src/core/replica.rs:1:1: on purpose";
  surfacePanics([Store], () => panic);
  const store = Store.open(false);
  assert.equal(store.put(3), 3);
  assert.equal(await store.later(false), "fine");
  for (const call of [() => store.put("trap"), () => store.broken, () => Store.open(true)]) {
    assert.throws(call, (error) => {
      assert.equal(error.name, "WharfError");
      assert.equal(error.code, "INTERNAL");
      assert.match(error.message, /a bug; please report it.*on purpose/);
      assert.ok(error.cause instanceof WebAssembly.RuntimeError);
      return true;
    });
  }
  await assert.rejects(store.later(true), { name: "WharfError", code: "INTERNAL" });
  assert.throws(() => store.put("range"), RangeError, "not a trap: untouched");
  assert.throws(() => store.free(), WebAssembly.RuntimeError, "free is wasm-bindgen's, unguarded");
  panic = null;
  assert.throws(() => store.put("trap"), /reopened: unreachable$/, "no recorded panic: the trap's own message");
});

/** A guard (internal.js's `guarded`, its name minified away in pkg/) calls the method it wraps with `apply`; wasm-bindgen's methods call the module. */
const isGuard = (fn) => typeof fn === "function" && /\.apply\(this,/.test(String(fn)) && !String(fn).includes("__wbg_ptr");

test("the package guards every class it hands out", async () => {
  await import(pathToFileURL(path.join(REPO_ROOT, "pkg", "node.js")).href); // index.js guards on import
  const glue = await import(pathToFileURL(path.join(REPO_ROOT, "pkg", "wharf_wasm.js")).href);
  for (const name of ["Database", "Collection", "Outbox", "DeadLetters", "Debug"]) {
    const proto = glue[name].prototype;
    const methods = Object.getOwnPropertyNames(proto).filter((m) => m !== "constructor" && m !== "free" && !m.startsWith("__"));
    assert.ok(methods.length > 0, name);
    for (const method of methods) {
      const { value, get } = Object.getOwnPropertyDescriptor(proto, method);
      assert.ok(isGuard(value ?? get), `${name}.${method} is guarded`);
    }
  }
  assert.ok(isGuard(glue.Database.open), "static methods too");
});

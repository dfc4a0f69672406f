// Panics, which should never happen, reach JavaScript as a bare `RuntimeError: unreachable` (the
// release build aborts on panic; wasm32 has no unwinding). This turns that trap, wherever a class
// of the package throws it or a promise of it rejects with it, into a WharfError with code
// `INTERNAL` and the panic's own message, recorded by the module's panic hook
// (src/api/panics.rs). After one the module may be left mid-call: the database should be reopened.

/** `error` as an `INTERNAL` WharfError if it is a WebAssembly trap, else unchanged. */
export function internalError(error, lastPanic) {
  if (!(error instanceof WebAssembly.RuntimeError)) return error;
  let panic = null;
  try {
    panic = lastPanic();
  } catch {} // the module itself may be what broke
  const wharf = new Error(`Wharf hit an internal error (a bug; please report it) and the database should be reopened: ${panic ?? error.message}`);
  wharf.name = "WharfError";
  wharf.code = "INTERNAL";
  wharf.cause = error;
  return wharf;
}

function guard(call, lastPanic) {
  return function guarded(...args) {
    let result;
    try {
      result = call.apply(this, args);
    } catch (error) {
      throw internalError(error, lastPanic);
    }
    return result instanceof Promise ? result.catch((error) => Promise.reject(internalError(error, lastPanic))) : result;
  };
}

/** Guards every method, getter and static method of `classes` (wasm-bindgen's own `free` and `__` helpers aside). */
export function surfacePanics(classes, lastPanic) {
  for (const Class of classes) {
    for (const [target, skip] of [[Class.prototype, ["constructor", "free"]], [Class, ["prototype", "length", "name"]]]) {
      for (const name of Object.getOwnPropertyNames(target)) {
        if (skip.includes(name) || name.startsWith("__")) continue;
        const descriptor = Object.getOwnPropertyDescriptor(target, name);
        if (!descriptor.configurable) continue;
        if (typeof descriptor.value === "function") descriptor.value = guard(descriptor.value, lastPanic);
        else if (descriptor.get) descriptor.get = guard(descriptor.get, lastPanic);
        else continue;
        Object.defineProperty(target, name, descriptor);
      }
    }
  }
}

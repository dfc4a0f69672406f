// Turns a caller's value into JSON text for Wharf, refusing anything that JSON (the wire format)
// or IndexedDB would silently change, drop or fail on: functions, symbols, BigInt, non-finite
// numbers, undefined inside arrays, class instances (Date, Map, typed arrays...) and cycles.
// It runs in JavaScript because JSON.stringify walks an object graph far faster than field-by-field
// calls from WebAssembly could; Rust then validates the text (keys, nesting, shape).
// Returns the JSON text, or { problem } naming the first offending value.

function isPlainPrototype(proto) {
  // Object.prototype of this realm or of another one (an iframe), or a null-prototype object.
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

function describe(value) {
  const name = value && value.constructor && value.constructor.name;
  return name ? `a ${name}` : "an object with a custom prototype";
}

export function encodeJson(value) {
  let problem = null;
  function check(key, encoded) {
    if (problem !== null) return undefined;
    const original = this[key];
    const at = key === "" ? "the value" : `the value at "${key}"`;
    switch (typeof original) {
      case "string":
      case "boolean":
        return encoded;
      case "number":
        if (!Number.isFinite(original)) problem = `${at} is ${original}, which JSON cannot represent`;
        return encoded;
      case "undefined":
        if (Array.isArray(this)) problem = `${at} is undefined inside an array`;
        return undefined;
      case "function":
        problem = `${at} is a function`;
        return undefined;
      case "symbol":
        problem = `${at} is a symbol`;
        return undefined;
      case "bigint":
        problem = `${at} is a BigInt; store it as a string or a number`;
        return undefined;
      default:
        if (original === null) return null;
        if (original !== encoded) {
          problem = `${at} is ${describe(original)} with toJSON(); store plain JSON instead (a Date as an ISO string or a number)`;
          return undefined;
        }
        if (!Array.isArray(original) && !isPlainPrototype(Object.getPrototypeOf(original))) {
          problem = `${at} is ${describe(original)}, not a plain object or array`;
          return undefined;
        }
        return encoded;
    }
  }
  let text;
  try {
    text = JSON.stringify(value, check);
  } catch (error) {
    const message = String(error && error.message);
    return {
      problem: /circular|cyclic/i.test(message)
        ? "it contains a cycle (an object that refers to itself)"
        : `it could not be encoded: ${message}`,
    };
  }
  if (problem !== null) return { problem };
  if (text === undefined) return { problem: "the value is undefined" };
  return text;
}

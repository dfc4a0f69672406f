// Short names for what the WebAssembly module imports from wasm-bindgen's glue and exports to it,
// used by scripts/build.mjs. wasm-bindgen names each import after the Rust item plus a
// 16-hex-digit hash (`__wbg_get_2080c49015e35254`), closures' exports after their mangled symbol
// (`wasm_bindgen__convert__closures_____invoke__h3ef992c4d86b04d8`), and every name is written
// twice: in the module and in the glue (an import object key, a `wasm.name` access). Hashes are
// random text, so they barely compress: the names cost 3 KB of the gzipped package. This renames
// them `a`, `b`, ... in the module, the glue and the glue's typings; everything else is
// untouched, and any surprise in the glue's shape fails the build instead of shipping a module
// whose imports or exports do not resolve.

/** Reads an unsigned LEB128 at `offset`: `[value, next offset]`. */
function readLeb(bytes, offset) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[offset++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, offset];
  }
}

function leb(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/** `a`..`z`, `A`..`Z`, then `aa`, `ab`...: JavaScript identifiers, none of them `__proto__`. */
function shortName(index) {
  const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  let name = "";
  do {
    name = letters[index % letters.length] + name;
    index = Math.floor(index / letters.length) - 1;
  } while (index >= 0);
  return name;
}

/** The bytes of an import's description (function, table, memory, global or tag) at `offset`. */
function skipImportDesc(bytes, offset) {
  const kind = bytes[offset++];
  const limits = (at) => {
    const [flags, afterFlags] = readLeb(bytes, at);
    let [, next] = readLeb(bytes, afterFlags);
    if (flags & 1) [, next] = readLeb(bytes, next);
    return next;
  };
  switch (kind) {
    case 0x00: // function: type index
      return readLeb(bytes, offset)[1];
    case 0x01: // table: reference type, limits
      return limits(offset + 1);
    case 0x02: // memory: limits
      return limits(offset);
    case 0x03: // global: value type, mutability
      return offset + 2;
    case 0x04: // tag: attribute, type index
      return readLeb(bytes, offset + 1)[1];
    default:
      throw new Error(`unknown import kind 0x${kind.toString(16)}`);
  }
}

/**
 * Renames the imports of `module` (the glue's own module name, e.g. "./wharf_wasm_bg.js") and the
 * exports in the WebAssembly binary `wasm`, in the glue's source text `glue` and in its typings
 * (`typings`: the texts of wharf_wasm.d.ts and wharf_wasm_bg.wasm.d.ts, by file name).
 * Returns `{ wasm, glue, typings, imports, exports }` (the last two: how many were renamed);
 * throws when the glue does not hold each import name exactly once as an import object key, or
 * still names an export other than as `wasm.name`.
 */
export function shortenNames(wasm, glue, typings, module) {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const out = [wasm.subarray(0, 8)];
  const renames = new Map();
  const exportRenames = new Map();
  let offset = 8;
  while (offset < wasm.length) {
    const id = wasm[offset];
    const [size, bodyStart] = readLeb(wasm, offset + 1);
    const bodyEnd = bodyStart + size;
    if (id === 7) {
      // exports: name, kind, index
      const body = [];
      let [count, at] = readLeb(wasm, bodyStart);
      body.push(...leb(count));
      while (count-- > 0) {
        const [nameLength, nameStart] = readLeb(wasm, at);
        const name = decoder.decode(wasm.subarray(nameStart, nameStart + nameLength));
        const [, descEnd] = readLeb(wasm, nameStart + nameLength + 1);
        const short = `${shortName(exportRenames.size)}`;
        exportRenames.set(name, short);
        const nameBytes = encoder.encode(short);
        body.push(...leb(nameBytes.length), ...nameBytes, ...wasm.subarray(nameStart + nameLength, descEnd));
        at = descEnd;
      }
      if (at !== bodyEnd) throw new Error("the export section has trailing bytes");
      out.push(Uint8Array.of(id, ...leb(body.length), ...body));
      offset = bodyEnd;
      continue;
    }
    if (id !== 2) {
      out.push(wasm.subarray(offset, bodyEnd));
      offset = bodyEnd;
      continue;
    }
    const body = [];
    let [count, at] = readLeb(wasm, bodyStart);
    body.push(...leb(count));
    while (count-- > 0) {
      const [moduleLength, moduleStart] = readLeb(wasm, at);
      const moduleName = decoder.decode(wasm.subarray(moduleStart, moduleStart + moduleLength));
      const [nameLength, nameStart] = readLeb(wasm, moduleStart + moduleLength);
      const name = decoder.decode(wasm.subarray(nameStart, nameStart + nameLength));
      const descStart = nameStart + nameLength;
      const descEnd = skipImportDesc(wasm, descStart);
      let newName = name;
      if (moduleName === module) {
        if (!renames.has(name)) renames.set(name, shortName(renames.size));
        newName = renames.get(name);
      }
      const nameBytes = encoder.encode(newName);
      body.push(...wasm.subarray(at, moduleStart + moduleLength), ...leb(nameBytes.length), ...nameBytes);
      body.push(...wasm.subarray(descStart, descEnd));
      at = descEnd;
    }
    if (at !== bodyEnd) throw new Error("the import section has trailing bytes");
    out.push(Uint8Array.of(id, ...leb(body.length), ...body));
    offset = bodyEnd;
  }

  const escape = (name) => name.replace(/[$]/g, "\\$&");
  let text = glue;
  for (const [name, short] of renames) {
    const key = new RegExp(`^(\\s*)${escape(name)}(\\s*:)`, "gm");
    const found = text.match(key)?.length ?? 0;
    if (found !== 1) throw new Error(`the glue holds the import ${name} ${found} times as a key, expected once`);
    text = text.replace(key, `$1${short}$2`);
    if (new RegExp(`(^|[^\\w$])${escape(name)}($|[^\\w$])`).test(text)) throw new Error(`the glue still names the import ${name} elsewhere`);
  }
  // Exports are read as `wasm.name` only (closures' exports also name local functions of the
  // glue, which the minifier renames anyway).
  text = text.replace(/\bwasm\.([A-Za-z_$][\w$]*)/g, (access, name) => {
    const short = exportRenames.get(name);
    if (short === undefined) throw new Error(`the glue reads wasm.${name}, which the module does not export`);
    return `wasm.${short}`;
  });
  const renamedTypings = {};
  for (const [file, source] of Object.entries(typings)) {
    // `export const name: ...` (wharf_wasm_bg.wasm.d.ts) and `readonly name: ...` (InitOutput)
    renamedTypings[file] = source.replace(/^(\s*(?:export const|readonly) )([A-Za-z_$][\w$]*)(?=:)/gm, (line, head, name) =>
      exportRenames.has(name) ? `${head}${exportRenames.get(name)}` : line,
    );
  }
  return {
    wasm: Buffer.concat(out),
    glue: text,
    typings: renamedTypings,
    imports: renames.size,
    exports: exportRenames.size,
  };
}

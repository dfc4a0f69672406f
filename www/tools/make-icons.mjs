// Draws the demo's app icons (public/icons/icon-192.png and icon-512.png) with no image tool: a
// sailboat at a wharf, computed per pixel (4x4 supersampled) and written as PNG with node:zlib.
// The drawing stays inside the central 60% so the 512 icon also works as a maskable icon.
// Run: node tools/make-icons.mjs (the PNGs are committed; rerun only to change the drawing).
import { writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

const OUT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "public", "icons");

const BACKGROUND = [15, 76, 129];
const WHITE = [255, 255, 255];
const SAIL_2 = [222, 235, 247];
const WATER = [94, 170, 230];

/** Colour at (x, y) in unit coordinates (0..1, y down), or null for the background. */
function shape(x, y) {
  // Main sail: triangle from the mast top (0.5, 0.22) down to the boom (0.5..0.7, 0.62).
  if (x >= 0.5 && y <= 0.62 && y >= 0.22 && x - 0.5 <= ((y - 0.22) / 0.4) * 0.2) return WHITE;
  // Jib: smaller triangle in front of the mast.
  if (x < 0.485 && y <= 0.62 && y >= 0.3 && 0.485 - x <= ((y - 0.3) / 0.32) * 0.15) return SAIL_2;
  // Hull: trapezoid.
  if (y >= 0.645 && y <= 0.72) {
    const inset = ((y - 0.645) / 0.075) * 0.06;
    if (x >= 0.27 + inset && x <= 0.73 - inset) return WHITE;
  }
  // Water: two wavy bands.
  for (const base of [0.76, 0.81]) {
    const wave = base + 0.012 * Math.sin(x * Math.PI * 8);
    if (x >= 0.22 && x <= 0.78 && Math.abs(y - wave) < 0.012) return WATER;
  }
  return null;
}

function render(size) {
  const samples = 4;
  const rgba = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const sum = [0, 0, 0];
      for (let sy = 0; sy < samples; sy++) {
        for (let sx = 0; sx < samples; sx++) {
          const color = shape((px + (sx + 0.5) / samples) / size, (py + (sy + 0.5) / samples) / size) ?? BACKGROUND;
          for (let c = 0; c < 3; c++) sum[c] += color[c];
        }
      }
      const at = (py * size + px) * 4;
      for (let c = 0; c < 3; c++) rgba[at + c] = Math.round(sum[c] / (samples * samples));
      rgba[at + 3] = 255;
    }
  }
  return rgba;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

function png(size) {
  const rgba = render(size);
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    rows[y * (size * 4 + 1)] = 0; // filter: none
    rgba.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

mkdirSync(OUT, { recursive: true });
for (const size of [192, 512]) {
  const file = path.join(OUT, `icon-${size}.png`);
  writeFileSync(file, png(size));
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

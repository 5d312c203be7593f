// Draws the field app's home-screen icons (web/field/icon-192.png, icon-512.png): a white
// map pin with a red centre on the command centre's navy, inside the middle 80 % so that a
// phone's round or squircle mask ("maskable") cuts nothing off. Written as PNG by hand
// (zlib from Node, no dependency), so the pictures can be made again exactly:
//
//   node scripts/field-icons.mjs

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../web/field');

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** An RGBA picture as a PNG file (8 bits per channel, no filter). */
function png(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) rgba.copy(raw, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const NAVY = [11, 37, 69];
const WHITE = [255, 255, 255];
const RED = [214, 40, 40];

/** The colour at (x, y) of the unit square, sampled 4×4 per pixel for smooth edges. */
function colourAt(x, y) {
  // The pin: a disc of radius 0.2 centred at (0.5, 0.42) and a point at (0.5, 0.82).
  const [cx, cy, r] = [0.5, 0.42, 0.2];
  const d = Math.hypot(x - cx, y - cy);
  if (d < 0.085) return RED;
  if (d < r) return WHITE;
  // The cone below the disc: between the two tangents from the tip.
  const tip = 0.82;
  if (y > cy && y < tip) {
    const half = r * ((tip - y) / (tip - cy)) * 1.05;
    if (Math.abs(x - cx) < half) return WHITE;
  }
  return NAVY;
}

function draw(size) {
  const rgba = Buffer.alloc(size * size * 4);
  const n = 4;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const acc = [0, 0, 0];
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          const c = colourAt((px + (sx + 0.5) / n) / size, (py + (sy + 0.5) / n) / size);
          for (let i = 0; i < 3; i++) acc[i] += c[i];
        }
      }
      const o = (py * size + px) * 4;
      for (let i = 0; i < 3; i++) rgba[o + i] = Math.round(acc[i] / (n * n));
      rgba[o + 3] = 255;
    }
  }
  return png(size, rgba);
}

for (const size of [192, 512]) {
  const file = path.join(OUT, `icon-${size}.png`);
  fs.writeFileSync(file, draw(size));
  console.log(`${file}: ${fs.statSync(file).size} bytes`);
}

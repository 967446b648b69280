// An image-classification dataset from a folder tree, torchvision's ImageFolder layout:
//
//   root/<class name>/<image>.png|.jpg|.jpeg
//
// Classes are the sub-folders of root in sorted (code-point) order; class i is the i-th name. Hidden
// entries (starting with '.') and files of other extensions are ignored. PNG is decoded with pngjs,
// JPEG with jpeg-js (both pure JS); the format is chosen by the file's magic bytes, not its name.
//
// Pixels: converted to RGB (grey is replicated, alpha is dropped — as PIL's convert('RGB')) or to
// grey (ITU-R 601 luma, 0.299 R + 0.587 G + 0.114 B — as PIL's convert('L')), then resized to
// imageSize × imageSize with a bilinear (triangle) filter whose support widens when shrinking, so a
// downscale averages instead of aliasing (PIL's Image.resize(BILINEAR); torchvision's Resize with
// antialias). Aspect ratio is not kept. Values are byte/255 in [0, 1].
//
// Split, deterministic and stratified: within each class the sorted file names are shuffled by a
// mulberry32 PRNG seeded with hash(seed, FNV-1a of the class name); the first ⌊testFraction·n⌋ files
// of that order are test, the next ⌊valFraction·n⌋ are val, the rest train. A file's split depends
// only on the seed, its class name and its class's file list, so adding or removing a class does not
// move the other classes' files (adding a file to a class reshuffles that class).
//
// Normalisation: mean 0.5, std 0.5 per channel unless given (fixed, so datasetInfo needs no pixels).
import fs from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { tensor } from '../tensor/tensor.js';
import { hashSeeds, permutation } from './loader.js';
import type { ImageDataset, Split } from './types.js';

export type { ImageDataset, Split } from './types.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

export interface ImageFolderOptions {
  /** Output side in pixels (default 32). */
  imageSize?: number;
  /** 1 = grey, 3 = RGB (default 3). */
  channels?: 1 | 3;
  /** Which split to load (default 'train'). */
  split?: Split;
  /** Fraction of each class held out for validation (default 0.1). */
  valFraction?: number;
  /** Fraction of each class held out for test (default 0.1). */
  testFraction?: number;
  /** Seed of the per-class shuffle (default 0). */
  seed?: number;
  /** Per-channel normalisation constants (default 0.5 / 0.5). */
  mean?: number[];
  std?: number[];
}

export interface FolderScan {
  root: string;
  classNames: string[];
  /** Per class, the image file names (sorted). */
  files: string[][];
}

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function isImageName(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/** Lists classes and image files; throws for a missing or empty root or a class with no images. */
export function scanImageFolder(root: string): FolderScan {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch (e) {
    throw new Error(`image folder ${root}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const isDir = (d: fs.Dirent): boolean =>
    d.isDirectory() || (d.isSymbolicLink() && fs.statSync(path.join(root, d.name), { throwIfNoEntry: false })?.isDirectory() === true);
  const classNames = entries.filter((d) => !d.name.startsWith('.') && isDir(d)).map((d) => d.name).sort();
  if (classNames.length === 0) {
    throw new Error(`image folder ${root}: no class sub-folders (expected ${root}/<class>/<image>.png|.jpg)`);
  }
  const files = classNames.map((c) => {
    const names = fs.readdirSync(path.join(root, c)).filter(isImageName).sort();
    if (names.length === 0) throw new Error(`image folder ${root}: class folder '${c}' has no images (${IMAGE_EXTENSIONS.join(', ')})`);
    return names;
  });
  return { root, classNames, files };
}

/** Which files of each class fall in `split` (indices into scan.files[c]), per the documented rule. */
export function splitImageFolder(
  scan: FolderScan,
  split: Split,
  o: { valFraction?: number; testFraction?: number; seed?: number } = {},
): number[][] {
  const valFraction = o.valFraction ?? 0.1;
  const testFraction = o.testFraction ?? 0.1;
  const seed = o.seed ?? 0;
  if (!(valFraction >= 0 && testFraction >= 0 && valFraction + testFraction < 1)) {
    throw new Error(`image folder: need valFraction ≥ 0, testFraction ≥ 0 and their sum < 1 (got ${valFraction}, ${testFraction})`);
  }
  return scan.files.map((names, c) => {
    const n = names.length;
    const order = permutation(n, hashSeeds([seed, fnv1a(scan.classNames[c]!)]));
    const nTest = Math.floor(testFraction * n);
    const nVal = Math.floor(valFraction * n);
    const [a, b] = split === 'test' ? [0, nTest] : split === 'val' ? [nTest, nTest + nVal] : [nTest + nVal, n];
    return Array.from(order.subarray(a, b)).sort((x, y) => x - y);
  });
}

interface Rgba {
  width: number;
  height: number;
  /** 4 bytes per pixel. */
  data: Uint8Array;
}

/** Decodes a PNG or JPEG file to RGBA bytes; errors name the file. */
export function decodeImage(file: string): Rgba {
  const bytes = fs.readFileSync(file);
  const isPng = bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  try {
    if (isPng) {
      const png = pngjs.PNG.sync.read(bytes);
      return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    if (isJpeg) {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      return { width: img.width, height: img.height, data: img.data };
    }
  } catch (e) {
    throw new Error(`image folder: cannot decode ${file}: ${(e as Error).message}`);
  }
  throw new Error(`image folder: cannot decode ${file}: neither PNG nor JPEG (magic bytes ${[...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`);
}

/** Per output index, the contributing input indices and weights of a 1-D triangle-filter resample. */
function resampleWeights(inSize: number, outSize: number): { start: Int32Array; count: Int32Array; weights: Float64Array; maxTaps: number } {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1); // filter radius in input pixels
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * maxTaps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support + 0.5));
    const hi = Math.min(inSize, Math.floor(center + support + 0.5));
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - center) / support));
      weights[i * maxTaps + (j - lo)] = w;
      sum += w;
    }
    if (sum === 0) {
      // Cannot happen for support ≥ 1, but keep the nearest pixel rather than a black one.
      weights[i * maxTaps] = 1;
      sum = 1;
    }
    for (let j = 0; j < hi - lo; j++) weights[i * maxTaps + j]! /= sum;
    start[i] = lo;
    count[i] = Math.max(1, hi - lo);
  }
  return { start, count, weights, maxTaps };
}

/**
 * Resizes planar float images [C, H, W] to [C, outH, outW] with the triangle filter (separable:
 * horizontal pass, then vertical).
 */
export function resizeBilinear(src: Float32Array, C: number, H: number, W: number, outH: number, outW: number): Float32Array {
  if (H === outH && W === outW) return src.slice();
  const hx = resampleWeights(W, outW);
  const hy = resampleWeights(H, outH);
  const tmp = new Float32Array(C * H * outW);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const row = (c * H + y) * W;
      const orow = (c * H + y) * outW;
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        const s = hx.start[x]!;
        const base = x * hx.maxTaps;
        for (let k = 0; k < hx.count[x]!; k++) acc += hx.weights[base + k]! * src[row + s + k]!;
        tmp[orow + x] = acc;
      }
    }
  }
  const out = new Float32Array(C * outH * outW);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < outH; y++) {
      const s = hy.start[y]!;
      const base = y * hy.maxTaps;
      const orow = (c * outH + y) * outW;
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        for (let k = 0; k < hy.count[y]!; k++) acc += hy.weights[base + k]! * tmp[(c * H + s + k) * outW + x]!;
        out[orow + x] = acc;
      }
    }
  }
  return out;
}

/** RGBA bytes → planar [C, H, W] floats in [0, 1] (C = 1 luma, or 3 RGB). */
export function toPlanar(img: Rgba, channels: 1 | 3): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(channels * n);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    const r = d[4 * i]!;
    const g = d[4 * i + 1]!;
    const b = d[4 * i + 2]!;
    if (channels === 1) {
      out[i] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    } else {
      out[i] = r / 255;
      out[n + i] = g / 255;
      out[2 * n + i] = b / 255;
    }
  }
  return out;
}

/** Loads one split of an image folder as an ImageDataset; see the file comment for every rule. */
export function loadImageFolder(root: string, opts: ImageFolderOptions = {}): ImageDataset {
  const size = opts.imageSize ?? 32;
  const channels = opts.channels ?? 3;
  const split = opts.split ?? 'train';
  if (!Number.isInteger(size) || size < 1) throw new Error(`image folder: imageSize must be a positive integer, got ${size}`);
  if (channels !== 1 && channels !== 3) throw new Error(`image folder: channels must be 1 or 3, got ${String(channels)}`);
  const mean = opts.mean ?? new Array<number>(channels).fill(0.5);
  const std = opts.std ?? new Array<number>(channels).fill(0.5);
  if (mean.length !== channels || std.length !== channels) throw new Error(`image folder: mean/std need ${channels} values`);
  const scan = scanImageFolder(root);
  const chosen = splitImageFolder(scan, split, opts);
  const total = chosen.reduce((s, c) => s + c.length, 0);
  if (total === 0) {
    throw new Error(`image folder ${root}: the '${split}' split is empty (valFraction ${opts.valFraction ?? 0.1}, testFraction ${opts.testFraction ?? 0.1}; a class of n images contributes ⌊fraction·n⌋)`);
  }
  const per = channels * size * size;
  const images = new Float32Array(total * per);
  const labels = new BigInt64Array(total);
  let k = 0;
  chosen.forEach((list, c) => {
    for (const i of list) {
      const file = path.join(root, scan.classNames[c]!, scan.files[c]![i]!);
      const img = decodeImage(file);
      const planar = toPlanar(img, channels);
      images.set(resizeBilinear(planar, channels, img.height, img.width, size, size), k * per);
      labels[k] = BigInt(c);
      k++;
    }
  });
  return {
    name: 'folder',
    split,
    images: tensor(images, { shape: [total, channels, size, size] }),
    labels: tensor(labels, { shape: [total] }),
    numClasses: scan.classNames.length,
    classNames: scan.classNames,
    mean: [...mean],
    std: [...std],
  };
}

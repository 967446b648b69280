// CIFAR-10 (Krizhevsky 2009: 60,000 32×32 colour images of 10 classes) from the standard *binary*
// version, 'cifar-10-batches-bin' (https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 binary
// version (suitable for C programs)"). Nothing is downloaded: `root` is a folder you provide, either
// cifar-10-batches-bin itself or a folder that contains it.
//
// Files: data_batch_1.bin … data_batch_5.bin (10,000 records each) and test_batch.bin (10,000). A
// record is 3073 bytes: 1 label byte (0–9), then 3072 pixel bytes — the 1024 red values of the 32×32
// image row-major, then the 1024 green, then the 1024 blue. That is already C,H,W order, so a record's
// pixels map straight onto [3, 32, 32]. batches.meta.txt (optional) holds the class names, one a line.
//
// The fixed split: train = data_batch_1..5 minus the last 5,000 records of data_batch_5 (45,000),
// val = those last 5,000, test = test_batch (10,000). In general val is the last `valSize` records of
// the concatenated training batches, so small fixtures can use a smaller valSize.
import fs from 'node:fs';
import path from 'node:path';
import { tensor } from '../tensor/tensor.js';
import type { ImageDataset, Split } from './types.js';

export type { ImageDataset, Split } from './types.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
/** The usual per-channel (R, G, B) mean and std of the CIFAR-10 training pixels. */
export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465];
export const CIFAR10_STD = [0.247, 0.2435, 0.2616];
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR10_VAL_SIZE = 5000;
const RECORD = 3073;
const PIXELS = 3072;

export interface Cifar10Options {
  /** Records at the end of the training batches held out for validation (default 5,000). */
  valSize?: number;
}

function missing(root: string, what: string): Error {
  return new Error(
    `CIFAR-10: ${what}. The loader needs the standard binary version 'cifar-10-batches-bin' ` +
      `(data_batch_1.bin … data_batch_5.bin, test_batch.bin); nothing is downloaded — ` +
      `unpack cifar-10-binary.tar.gz and pass its folder (given: ${root})`,
  );
}

/** The folder holding the .bin files: `root` itself, or `root`/cifar-10-batches-bin. */
export function resolveCifar10Dir(root: string): string {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw missing(root, `no such folder ${root}`);
  const nested = path.join(root, 'cifar-10-batches-bin');
  if (!fs.existsSync(path.join(root, CIFAR10_TEST_FILE)) && !fs.existsSync(path.join(root, CIFAR10_TRAIN_FILES[0]!)) && fs.existsSync(nested)) {
    return nested;
  }
  return root;
}

/** Class names from batches.meta.txt when present (10 non-empty lines), else the standard ones. */
export function cifar10ClassNames(dir: string): string[] {
  const meta = path.join(dir, 'batches.meta.txt');
  if (!fs.existsSync(meta)) return [...CIFAR10_CLASSES];
  const names = fs.readFileSync(meta, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length !== 10) throw new Error(`CIFAR-10 ${meta}: ${names.length} class names, expected 10 (one per line)`);
  return names;
}

const fileCache = new Map<string, Uint8Array>();

/** Reads and validates one batch file; cached per process by (path, size, mtime). */
function readBatch(dir: string, root: string, name: string): Uint8Array {
  const file = path.join(dir, name);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw missing(root, `missing file ${file}`);
  }
  const key = `${file}\0${st.size}\0${st.mtimeMs}`;
  const hit = fileCache.get(key);
  if (hit) return hit;
  const bytes = fs.readFileSync(file);
  if (bytes.length === 0 || bytes.length % RECORD !== 0) {
    throw new Error(`CIFAR-10 ${file}: ${bytes.length} bytes is not a whole number of ${RECORD}-byte records (1 label + 3072 pixels); not a cifar-10-batches-bin file, or truncated`);
  }
  const n = bytes.length / RECORD;
  for (let i = 0; i < n; i++) {
    const label = bytes[i * RECORD]!;
    if (label > 9) throw new Error(`CIFAR-10 ${file}: record ${i} has label ${label}, not in 0..9 (CIFAR-100 file, or corrupt?)`);
  }
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  fileCache.set(key, data);
  return data;
}

/** Drops the cached batch files. */
export function clearCifar10Cache(): void {
  fileCache.clear();
}

/**
 * Loads one split as an ImageDataset ([N, 3, 32, 32] float32 in [0, 1], [N] int64). Throws a clear
 * Error for a missing folder or file, a file that is not whole records, or a label above 9.
 */
export function loadCifar10(root: string, split: Split, opts: Cifar10Options = {}): ImageDataset {
  if (split !== 'train' && split !== 'val' && split !== 'test') throw new Error(`loadCifar10: unknown split '${split as string}' (train, val or test)`);
  const valSize = opts.valSize ?? CIFAR10_VAL_SIZE;
  if (!Number.isInteger(valSize) || valSize < 0) throw new Error(`loadCifar10: valSize must be a non-negative integer, got ${valSize}`);
  const dir = resolveCifar10Dir(root);
  const classNames = cifar10ClassNames(dir);

  // Records to take: [file bytes, first record, end record) runs.
  const runs: [Uint8Array, number, number][] = [];
  if (split === 'test') {
    const b = readBatch(dir, root, CIFAR10_TEST_FILE);
    runs.push([b, 0, b.length / RECORD]);
  } else {
    const batches = CIFAR10_TRAIN_FILES.map((f) => readBatch(dir, root, f));
    const total = batches.reduce((s, b) => s + b.length / RECORD, 0);
    if (valSize >= total) throw new Error(`loadCifar10: valSize ${valSize} leaves no training records (the training batches hold ${total})`);
    const [lo, hi] = split === 'train' ? [0, total - valSize] : [total - valSize, total];
    let start = 0;
    for (const b of batches) {
      const n = b.length / RECORD;
      const a = Math.max(lo, start);
      const e = Math.min(hi, start + n);
      if (a < e) runs.push([b, a - start, e - start]);
      start += n;
    }
  }
  const count = runs.reduce((s, [, a, e]) => s + e - a, 0);
  const images = new Float32Array(count * PIXELS);
  const labels = new BigInt64Array(count);
  let k = 0;
  for (const [bytes, a, e] of runs) {
    for (let r = a; r < e; r++, k++) {
      const off = r * RECORD;
      labels[k] = BigInt(bytes[off]!);
      const dst = k * PIXELS;
      for (let j = 0; j < PIXELS; j++) images[dst + j] = bytes[off + 1 + j]! / 255;
    }
  }
  return {
    name: 'cifar10',
    split,
    images: tensor(images, { shape: [count, 3, 32, 32] }),
    labels: tensor(labels, { shape: [count] }),
    numClasses: 10,
    classNames,
    mean: [...CIFAR10_MEAN],
    std: [...CIFAR10_STD],
  };
}

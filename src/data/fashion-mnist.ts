// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017: 70,000 28×28 grey images of 10 clothing classes) from
// Debian's package `dataset-fashion-mnist`, which installs the original gzip'd IDX files in
// /usr/share/datasets/fashion-mnist (or set FASHION_MNIST_DIR, or pass `root`).
//
// The fixed split: train = the first 55,000 of the 60,000 training images, val = the last 5,000 of
// them, test = the 10,000 test images (t10k-*). Pixels are byte/255, in [0, 1].
import fs from 'node:fs';
import path from 'node:path';
import { tensor } from '../tensor/tensor.js';
import { readIdxFile } from './idx.js';
import type { ImageDataset, Split } from './types.js';

export type { ImageDataset, Split } from './types.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];
/**
 * Mean and std of the training pixels (the usual constants, computed over the 60k training images;
 * test/data.test.ts recomputes them on the 55k train split and checks agreement within 1e-3).
 */
export const FASHION_MNIST_MEAN = [0.286];
export const FASHION_MNIST_STD = [0.353];
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_VAL_SIZE = 5000;

const FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;
const SIZE = 28 * 28;

interface RawPart {
  images: Uint8Array; // [n, 28, 28]
  labels: Uint8Array; // [n]
  n: number;
}

const cache = new Map<string, { train?: RawPart; test?: RawPart }>();

/** The directory used when no root is given: $FASHION_MNIST_DIR, else Debian's location. */
export function fashionMnistDir(): string {
  return process.env.FASHION_MNIST_DIR ?? FASHION_MNIST_DEFAULT_DIR;
}

/** True if all four files are present in `root`. */
export function fashionMnistAvailable(root = fashionMnistDir()): boolean {
  return Object.values(FILES).every((f) => fs.existsSync(path.join(root, f)));
}

function notFound(root: string, detail: string): Error {
  return new Error(
    `Fashion-MNIST not found in ${root}: install Debian's package dataset-fashion-mnist ` +
      `(sudo apt-get install dataset-fashion-mnist) or set FASHION_MNIST_DIR (${detail})`,
  );
}

function readPart(root: string, which: 'train' | 'test'): RawPart {
  const imgFile = path.join(root, which === 'train' ? FILES.trainImages : FILES.testImages);
  const lblFile = path.join(root, which === 'train' ? FILES.trainLabels : FILES.testLabels);
  for (const f of [imgFile, lblFile]) if (!fs.existsSync(f)) throw notFound(root, `missing ${path.basename(f)}`);
  const img = readIdxFile(imgFile, { ndims: 3 });
  const lbl = readIdxFile(lblFile, { ndims: 1 });
  const [n, h, w] = img.dims as [number, number, number];
  if (h !== 28 || w !== 28) throw new Error(`Fashion-MNIST ${imgFile}: images are ${h}×${w}, expected 28×28`);
  if (lbl.dims[0] !== n) throw new Error(`Fashion-MNIST ${lblFile}: ${lbl.dims[0]} labels for ${n} images in ${imgFile}`);
  const expectedN = which === 'train' ? 60000 : 10000;
  if (n !== expectedN) throw new Error(`Fashion-MNIST ${imgFile}: ${n} images, expected ${expectedN}`);
  for (let i = 0; i < n; i++) {
    if (lbl.data[i]! > 9) throw new Error(`Fashion-MNIST ${lblFile}: label ${lbl.data[i]} at index ${i} is not in 0..9`);
  }
  return { images: img.data, labels: lbl.data, n };
}

function raw(root: string, which: 'train' | 'test'): RawPart {
  const key = path.resolve(root);
  let entry = cache.get(key);
  if (!entry) {
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw notFound(root, 'no such directory');
    entry = {};
    cache.set(key, entry);
  }
  const hit = entry[which];
  if (hit) return hit;
  const part = readPart(root, which);
  entry[which] = part;
  return part;
}

/** Index range [a, b) of `split` within its source file (train/val share the 60k training file). */
export function fashionMnistRange(split: Split): [number, number] {
  if (split === 'train') return [0, 60000 - FASHION_MNIST_VAL_SIZE];
  if (split === 'val') return [60000 - FASHION_MNIST_VAL_SIZE, 60000];
  return [0, 10000];
}

/**
 * Loads one split as an ImageDataset ([N, 1, 28, 28] float32 in [0, 1], [N] int64 labels). The
 * parsed files are cached per process and root; every call makes new tensors (the caller owns them).
 */
export function loadFashionMnist(split: Split, root: string = fashionMnistDir()): ImageDataset {
  if (split !== 'train' && split !== 'val' && split !== 'test') throw new Error(`loadFashionMnist: unknown split '${split as string}' (train, val or test)`);
  const part = raw(root, split === 'test' ? 'test' : 'train');
  const [a, b] = fashionMnistRange(split);
  const n = b - a;
  const src = part.images.subarray(a * SIZE, b * SIZE);
  const images = new Float32Array(n * SIZE);
  for (let i = 0; i < images.length; i++) images[i] = src[i]! / 255;
  const labels = new BigInt64Array(n);
  for (let i = 0; i < n; i++) labels[i] = BigInt(part.labels[a + i]!);
  return {
    name: 'fashion-mnist',
    split,
    images: tensor(images, { shape: [n, 1, 28, 28] }),
    labels: tensor(labels, { shape: [n] }),
    numClasses: 10,
    classNames: [...FASHION_MNIST_CLASSES],
    mean: [...FASHION_MNIST_MEAN],
    std: [...FASHION_MNIST_STD],
  };
}

/** Drops the parsed files from the per-process cache (all roots, or one). */
export function clearFashionMnistCache(root?: string): void {
  if (root === undefined) cache.clear();
  else cache.delete(path.resolve(root));
}

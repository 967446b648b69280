// Detection canvases composed from real MNIST / Fashion-MNIST images (BENCHMARKS.md: "64×64 with 1–4
// objects at random scales from the real images of the corresponding split, generated
// deterministically from a seed; test canvases only from test images").
//
// Canvas i of (source, split, seed) uses its own mulberry32 stream seeded by hash(seed, split, i), so
// any canvas can be regenerated alone and a run that regenerates its training canvases every epoch
// (seed, epoch) is reproducible on resume. Per canvas: k objects, k uniform in [minObjects,
// maxObjects]; each object is a random image of the split, resized (triangle filter, as the image
// folder loader) to s×s with s uniform in [minScale, maxScale], at a uniform position; pixels below
// PIXEL_FLOOR are set to 0 so the object's extent is exact, and the box is the tight bounding box of
// its non-zero pixels. A placement whose tight box overlaps an earlier one by IoU > maxOverlap is
// redrawn (up to 50 times, then the canvas has fewer objects — never fewer than one). Objects are
// composited with max() on a black canvas, so every box edge touches its own object's pixels.
import { tensor } from '../tensor/tensor.js';
import type { DetectionTarget } from '../detect/loss.js';
import { iouXyxy, xyxyToCxcywh, type Box4 } from '../detect/boxes.js';
import { resizeBilinear } from './folder.js';
import { hashSeeds, mulberry32, randBelow } from './loader.js';
import type { ImageDataset, Split } from './types.js';

/** Pixels of a resized object below this are zeroed, so its box is exact and the background stays 0. */
export const PIXEL_FLOOR = 0.05;

export interface CanvasOptions {
  /** Canvas side in pixels. */
  size: number;
  minObjects: number;
  maxObjects: number;
  /** Side of a resized source image, in pixels. */
  minScale: number;
  maxScale: number;
  /** Largest IoU allowed between two objects' boxes (small overlaps allowed). */
  maxOverlap: number;
}

export const CANVAS_DEFAULTS: CanvasOptions = { size: 64, minObjects: 1, maxObjects: 4, minScale: 16, maxScale: 32, maxOverlap: 0.2 };

/** One canvas's objects with where they came from (for tests and inspection). */
export interface CanvasObject {
  label: number;
  /** Index of the source image within its split. */
  source: number;
  /** Tight box in pixels, xyxy (far edges exclusive). */
  box: Box4;
  /** Where the s×s resized image was pasted (top-left) and s. */
  x: number;
  y: number;
  side: number;
}

export interface CanvasSet {
  /** [N, 1, size, size] float32 in [0, 1]. */
  pixels: Float32Array;
  objects: CanvasObject[][];
}

const SPLIT_CODE: Record<Split, number> = { train: 1, val: 2, test: 3 };

/** The resized, floored object and its tight box within the s×s patch (null if blank). */
function resizedObject(src: Float32Array, h: number, w: number, side: number): { patch: Float32Array; box: Box4 } | null {
  const patch = resizeBilinear(src, 1, h, w, side, side);
  let x0 = side;
  let y0 = side;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const k = y * side + x;
      if (patch[k]! < PIXEL_FLOOR) {
        patch[k] = 0;
        continue;
      }
      if (patch[k]! > 1) patch[k] = 1;
      if (x < x0) x0 = x;
      if (y < y0) y0 = y;
      if (x > x1) x1 = x;
      if (y > y1) y1 = y;
    }
  }
  return x1 < 0 ? null : { patch, box: [x0, y0, x1 + 1, y1 + 1] };
}

/**
 * Composes `count` canvases from the images of `source` (one split of a 1-channel dataset), the i-th
 * a pure function of (seed, source.split, i).
 */
export function composeCanvases(source: { images: Float32Array; labels: ArrayLike<number | bigint>; n: number; h: number; w: number; split: Split }, count: number, seed: number, o: CanvasOptions = CANVAS_DEFAULTS): CanvasSet {
  const { size, minObjects, maxObjects, minScale, maxScale } = o;
  if (!(minObjects >= 1 && maxObjects >= minObjects && minScale >= 4 && maxScale >= minScale && maxScale <= size)) {
    throw new Error(`canvas: bad options ${JSON.stringify(o)} (need 1 ≤ minObjects ≤ maxObjects, 4 ≤ minScale ≤ maxScale ≤ size)`);
  }
  if (source.n === 0) throw new Error(`canvas: the ${source.split} split has no images`);
  const pixels = new Float32Array(count * size * size);
  const objects: CanvasObject[][] = [];
  const hw = source.h * source.w;
  for (let i = 0; i < count; i++) {
    const next = mulberry32(hashSeeds([seed, SPLIT_CODE[source.split], i]));
    const k = minObjects + randBelow(next, maxObjects - minObjects + 1);
    const placed: CanvasObject[] = [];
    const base = i * size * size;
    for (let tries = 0; placed.length < k && tries < 50 * k; tries++) {
      const idx = randBelow(next, source.n);
      const side = minScale + randBelow(next, maxScale - minScale + 1);
      const x = randBelow(next, size - side + 1);
      const y = randBelow(next, size - side + 1);
      const obj = resizedObject(source.images.subarray(idx * hw, (idx + 1) * hw), source.h, source.w, side);
      if (!obj) continue;
      const box: Box4 = [obj.box[0] + x, obj.box[1] + y, obj.box[2] + x, obj.box[3] + y];
      if (placed.some((p) => iouXyxy(p.box, box) > o.maxOverlap)) continue;
      for (let py = 0; py < side; py++) {
        for (let px = 0; px < side; px++) {
          const v = obj.patch[py * side + px]!;
          const k2 = base + (y + py) * size + (x + px);
          if (v > pixels[k2]!) pixels[k2] = v;
        }
      }
      placed.push({ label: Number(source.labels[idx]!), source: idx, box, x, y, side });
    }
    if (placed.length === 0) throw new Error(`canvas ${i}: could not place any object (are the ${source.split} images blank?)`);
    objects.push(placed);
  }
  return { pixels, objects };
}

/** DETR targets (cxcywh normalised to [0, 1]) of canvases' objects. */
export function canvasTargets(objects: readonly CanvasObject[][], size: number): DetectionTarget[] {
  return objects.map((objs) => ({
    labels: objs.map((o) => o.label),
    boxes: objs.map((o) => xyxyToCxcywh(o.box.map((v) => v / size) as unknown as Box4)),
  }));
}

/** The raw pixels of a 1-channel classification split, for composeCanvases. */
export function canvasSource(d: ImageDataset): { images: Float32Array; labels: BigInt64Array; n: number; h: number; w: number; split: Split } {
  const [n, c, h, w] = d.images.shape as [number, number, number, number];
  if (c !== 1) throw new Error(`canvas: ${d.name} has ${c} channels; canvases are grey (MNIST, Fashion-MNIST)`);
  return { images: d.images.data() as Float32Array, labels: d.labels.data() as BigInt64Array, n, h, w, split: d.split };
}

/** A canvas set as tensors: images [N, 1, size, size]. */
export function canvasImages(set: CanvasSet, size: number) {
  return tensor(set.pixels, { shape: [set.objects.length, 1, size, size] });
}

// A COCO-format detection dataset (e.g. a user's drone footage): one annotations JSON
//   { "images": [{ "id", "file_name", "width", "height" }],
//     "annotations": [{ "image_id", "category_id", "bbox": [x, y, w, h], "iscrowd"? }],
//     "categories": [{ "id", "name" }] }
// with the image files under `imagesDir` (default: the JSON's folder). Classes are the categories in
// ascending id order (class i = the i-th). Images are decoded (PNG/JPEG), converted to grey or RGB and
// resized to size×size (aspect ratio not kept; boxes scale with the image). Crowd annotations
// (iscrowd 1) are skipped — COCOeval ignores them and this project's mAP has no crowd handling.
//
// Split, deterministic: images sorted by id, shuffled by a seeded permutation; the first
// ⌊test·n⌋ are test, the next ⌊val·n⌋ val, the rest train.
//
// Every malformed case is an Error naming the file and the entry: invalid JSON, a missing array, an
// image without id / file_name / width / height, a duplicate image id, an annotation of an unknown
// image or category, a bbox that is not four finite numbers, has no area, or lies outside its image
// (a tolerance of half a pixel for rounding, then clipped), and a missing or undecodable image file
// (or one whose size differs from the JSON's width/height).
import fs from 'node:fs';
import path from 'node:path';
import type { DetectionTarget } from '../detect/loss.js';
import { xyxyToCxcywh, type Box4 } from '../detect/boxes.js';
import { tensor } from '../tensor/tensor.js';
import { decodeImage, resizeBilinear, toPlanar } from './folder.js';
import { permutation } from './loader.js';
import type { Split } from './types.js';
import type { DetectionDataset } from './detection.js';

export interface CocoOptions {
  imageSize: number;
  channels: 1 | 3;
  valFraction: number;
  testFraction: number;
  seed: number;
  /** Folder the file_name entries are relative to (default: the JSON's folder). */
  imagesDir?: string;
}

export const COCO_DEFAULTS: CocoOptions = { imageSize: 64, channels: 1, valFraction: 0.1, testFraction: 0.1, seed: 0 };
/** Rounding slack for boxes at the image border, in pixels (then clipped). */
const BORDER_TOLERANCE = 0.5;

interface CocoImage { id: number; file: string; width: number; height: number }
interface CocoParsed {
  images: CocoImage[];
  /** per image id: class indices and xyxy boxes in the image's pixels */
  objects: Map<number, { labels: number[]; boxes: Box4[] }>;
  classNames: string[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Reads and checks the annotations file (no pixels). */
export function parseCocoAnnotations(file: string): CocoParsed {
  const where = `COCO annotations ${file}`;
  if (!fs.existsSync(file)) throw new Error(`${where}: no such file`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(json)) throw new Error(`${where}: the top level must be an object with images, annotations and categories`);
  for (const key of ['images', 'annotations', 'categories'] as const) {
    if (!Array.isArray(json[key])) throw new Error(`${where}: "${key}" must be an array`);
  }
  const cats = json.categories as unknown[];
  const catIds: number[] = [];
  const catNames = new Map<number, string>();
  for (const [i, c] of cats.entries()) {
    if (!isObj(c) || !Number.isInteger(c.id)) throw new Error(`${where}: categories[${i}] needs an integer "id"`);
    if (catNames.has(c.id as number)) throw new Error(`${where}: categories[${i}]: duplicate category id ${c.id}`);
    catIds.push(c.id as number);
    catNames.set(c.id as number, typeof c.name === 'string' ? c.name : String(c.id));
  }
  if (catIds.length === 0) throw new Error(`${where}: "categories" is empty`);
  catIds.sort((a, b) => a - b);
  const classOf = new Map(catIds.map((id, k) => [id, k]));
  const images: CocoImage[] = [];
  const byId = new Map<number, CocoImage>();
  for (const [i, im] of (json.images as unknown[]).entries()) {
    if (!isObj(im) || !Number.isInteger(im.id)) throw new Error(`${where}: images[${i}] needs an integer "id"`);
    if (typeof im.file_name !== 'string' || im.file_name === '') throw new Error(`${where}: images[${i}] (id ${im.id}) needs a "file_name"`);
    if (!num(im.width) || !num(im.height) || im.width <= 0 || im.height <= 0) throw new Error(`${where}: images[${i}] (id ${im.id}) needs positive "width" and "height"`);
    if (byId.has(im.id as number)) throw new Error(`${where}: images[${i}]: duplicate image id ${im.id}`);
    const entry = { id: im.id as number, file: im.file_name, width: im.width, height: im.height };
    images.push(entry);
    byId.set(entry.id, entry);
  }
  const objects = new Map<number, { labels: number[]; boxes: Box4[] }>(images.map((im) => [im.id, { labels: [], boxes: [] }]));
  for (const [i, a] of (json.annotations as unknown[]).entries()) {
    const at = `${where}: annotations[${i}]`;
    if (!isObj(a)) throw new Error(`${at} is not an object`);
    const im = byId.get(a.image_id as number);
    if (!im) throw new Error(`${at}: image_id ${JSON.stringify(a.image_id)} is not in "images"`);
    const cls = classOf.get(a.category_id as number);
    if (cls === undefined) throw new Error(`${at}: unknown category_id ${JSON.stringify(a.category_id)} (categories: ${catIds.join(', ')})`);
    if (a.iscrowd === 1) continue;
    const b = a.bbox;
    if (!Array.isArray(b) || b.length !== 4 || !b.every(num)) throw new Error(`${at}: "bbox" must be four finite numbers [x, y, w, h], got ${JSON.stringify(b)}`);
    const [x, y, w, h] = b as [number, number, number, number];
    if (w <= 0 || h <= 0) throw new Error(`${at}: bbox ${JSON.stringify(b)} has no area (w and h must be > 0)`);
    const t = BORDER_TOLERANCE;
    if (x < -t || y < -t || x + w > im.width + t || y + h > im.height + t) {
      throw new Error(`${at}: bbox ${JSON.stringify(b)} lies outside image ${im.id} (${im.width}×${im.height})`);
    }
    const o = objects.get(im.id)!;
    o.labels.push(cls);
    o.boxes.push([Math.max(0, x), Math.max(0, y), Math.min(im.width, x + w), Math.min(im.height, y + h)]);
  }
  return { images, objects, classNames: catIds.map((id) => catNames.get(id)!) };
}

/** The images of a split, in id order (see the file comment). */
export function cocoSplitImages(images: readonly CocoImage[], split: Split, o: Pick<CocoOptions, 'valFraction' | 'testFraction' | 'seed'>): CocoImage[] {
  const sorted = [...images].sort((a, b) => a.id - b.id);
  const perm = permutation(sorted.length, o.seed);
  const nTest = Math.floor(o.testFraction * sorted.length);
  const nVal = Math.floor(o.valFraction * sorted.length);
  const [a, b] = split === 'test' ? [0, nTest] : split === 'val' ? [nTest, nTest + nVal] : [nTest + nVal, sorted.length];
  return Array.from(perm.subarray(a, b)).sort((x, y) => x - y).map((k) => sorted[k]!);
}

/** Loads one split of a COCO-format dataset (pixels decoded and resized). */
export function loadCocoDetection(file: string, split: Split, opts: Partial<CocoOptions> = {}): DetectionDataset {
  const o = { ...COCO_DEFAULTS, ...opts };
  const parsed = parseCocoAnnotations(file);
  const dir = o.imagesDir ?? path.dirname(file);
  const chosen = cocoSplitImages(parsed.images, split, o);
  const S = o.imageSize;
  const C = o.channels;
  const pixels = new Float32Array(chosen.length * C * S * S);
  const targets: DetectionTarget[] = [];
  for (const [k, im] of chosen.entries()) {
    const f = path.join(dir, im.file);
    if (!fs.existsSync(f)) throw new Error(`COCO annotations ${file}: image ${im.id}: file ${f} not found`);
    let rgba;
    try {
      rgba = decodeImage(f);
    } catch (e) {
      throw new Error(`COCO annotations ${file}: image ${im.id}: ${(e as Error).message}`);
    }
    if (rgba.width !== im.width || rgba.height !== im.height) {
      throw new Error(`COCO annotations ${file}: image ${im.id}: ${f} is ${rgba.width}×${rgba.height} but the JSON says ${im.width}×${im.height}`);
    }
    pixels.set(resizeBilinear(toPlanar(rgba, C), C, im.height, im.width, S, S), k * C * S * S);
    const obj = parsed.objects.get(im.id)!;
    targets.push({
      labels: [...obj.labels],
      boxes: obj.boxes.map((b) => xyxyToCxcywh([b[0] / im.width, b[1] / im.height, b[2] / im.width, b[3] / im.height])),
    });
  }
  return {
    name: `coco:${path.basename(file)}`,
    split,
    images: tensor(pixels, { shape: [chosen.length, C, S, S] }),
    targets,
    imageIds: chosen.map((im) => im.id),
    numClasses: parsed.classNames.length,
    classNames: parsed.classNames,
    mean: new Array<number>(C).fill(0.5),
    std: new Array<number>(C).fill(0.5),
  };
}

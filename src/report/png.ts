// PNG pictures of image batches: plain grids, one-row-per-class grids and grids with boxes drawn.
//
// Input is a batch [N, C, H, W] in pixel space [0, 1] (denormalise first: data/augment.ts
// `denormalize`); values are clamped, NaN shows as 0. C = 1 is replicated to grey RGB, C = 3 is
// RGB (C = 4: the alpha channel is ignored). A uint8 tensor is read as 0..255. Output is RGB PNG
// bytes from pngjs; the same input always gives the same bytes.
//
// Row labels are drawn with a built-in 3×5 pixel font (digits, A–Z, a little punctuation;
// lower case shows as upper case), so no font dependency is needed.
import pngjs from 'pngjs';
import { Tensor } from '../tensor/tensor.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { layoutPathFor, PALETTE } from './common.js';

export { layoutPathFor, PALETTE };

/** A batch given as plain numbers (row-major [N, C, H, W]), e.g. for tests or non-tensor callers. */
export interface ImageBatch {
  shape: readonly number[];
  data: ArrayLike<number>;
}
export type ImagesInput = Tensor | ImageBatch;

/** An RGB colour: [r, g, b] bytes, or a CSS hex string '#rrggbb' / '#rgb'. */
export type ColorSpec = readonly [number, number, number] | string;

export interface GridOptions {
  /** Grid rows; default ceil(N / cols). */
  rows?: number;
  /** Grid columns; default ceil(sqrt(N)), or ceil(N / rows) when only rows is given. */
  cols?: number;
  /** Integer nearest-neighbour upscaling; default the smallest that shows the image side at ≥ 56 px. */
  scale?: number;
  /** Pixels between cells and around the grid (output pixels); default 2. */
  padding?: number;
  /** Colour of the padding and of empty cells; default white. */
  padColor?: ColorSpec;
  /** Text drawn left of each row (built-in pixel font); default none. */
  rowLabels?: readonly string[];
  /** Colour of the row labels; default black or white, whichever contrasts with padColor. */
  labelColor?: ColorSpec;
}

/** Where everything is in a grid PNG (all in output pixels). */
export interface GridLayout {
  width: number;
  height: number;
  rows: number;
  cols: number;
  /** Source image size. */
  imageHeight: number;
  imageWidth: number;
  scale: number;
  /** Cell size = source size × scale. */
  cellHeight: number;
  cellWidth: number;
  padding: number;
  /** Width of the row-label margin at the left (0 without labels). */
  labelWidth: number;
  /** cells[r][c] = index of the image in that cell, or null for an empty cell. */
  cells: (number | null)[][];
  rowLabels?: string[];
}

/** The layout of a class grid: row r shows images the labels put in class `classes[r]`. */
export interface ClassGridLayout extends GridLayout {
  classes: number[];
  /** How many images of each class the batch holds (may exceed perClass). */
  counts: number[];
  perClass: number;
  classNames?: string[];
}

/** Top-left output pixel of cell (r, c). */
export function cellOrigin(layout: GridLayout, r: number, c: number): { x: number; y: number } {
  return {
    x: layout.labelWidth + layout.padding + c * (layout.cellWidth + layout.padding),
    y: layout.padding + r * (layout.cellHeight + layout.padding),
  };
}

// ---------------------------------------------------------------------------------------------
// Reading the batch

interface Pixels {
  n: number;
  c: number;
  h: number;
  w: number;
  /** Values in [0, 1] space (not yet clamped). */
  data: ArrayLike<number>;
  /** Multiplier to bring data to [0, 1] (1/255 for uint8). */
  unit: number;
}

function readPixels(images: ImagesInput, fn: string): Pixels {
  let shape: readonly number[];
  let data: ArrayLike<number>;
  let unit = 1;
  if (images instanceof Tensor) {
    shape = images.shape;
    const dt = images.dtype;
    if (dt === 'float32' || dt === 'float64') data = images.data() as Float32Array | Float64Array;
    else if (dt === 'uint8') {
      data = images.data() as Uint8Array;
      unit = 1 / 255;
    } else data = images.toArray();
  } else {
    shape = images.shape;
    data = images.data;
  }
  if (shape.length !== 4) throw new RangeError(`${fn}: images must be [N, C, H, W], got shape [${shape.join(', ')}]`);
  const [n, c, h, w] = shape as [number, number, number, number];
  if (c !== 1 && c !== 3 && c !== 4) throw new RangeError(`${fn}: images need 1 (grey), 3 (RGB) or 4 channels, got ${c}`);
  if (n < 1 || h < 1 || w < 1) throw new RangeError(`${fn}: empty batch, shape [${shape.join(', ')}]`);
  if (data.length !== n * c * h * w) throw new RangeError(`${fn}: ${data.length} values do not fill shape [${shape.join(', ')}]`);
  return { n, c, h, w, data, unit };
}

function toByte(v: number): number {
  if (!(v > 0)) return 0; // also NaN
  if (v >= 1) return 255;
  return Math.round(v * 255);
}

export function parseColor(c: ColorSpec): [number, number, number] {
  if (typeof c !== 'string') return [clampByte(c[0]), clampByte(c[1]), clampByte(c[2])];
  let m = /^#([0-9a-f]{6})$/i.exec(c);
  if (m) {
    const v = parseInt(m[1]!, 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }
  m = /^#([0-9a-f]{3})$/i.exec(c);
  if (m) {
    const s = m[1]!;
    return [0, 1, 2].map((i) => parseInt(s[i]! + s[i]!, 16)) as [number, number, number];
  }
  throw new TypeError(`colour '${c}': expected '#rrggbb', '#rgb' or [r, g, b]`);
}

function clampByte(v: number): number {
  return Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round(v))) : 0;
}


// ---------------------------------------------------------------------------------------------
// A tiny bitmap font: 3×5 glyphs, rows top to bottom, '1' = ink.

const GLYPHS: Record<string, string> = {
  '0': '111101101101111', '1': '010110010010111', '2': '111001111100111', '3': '111001111001111',
  '4': '101101111001001', '5': '111100111001111', '6': '111100111101111', '7': '111001001010010',
  '8': '111101111101111', '9': '111101111001111',
  A: '010101111101101', B: '110101110101110', C: '011100100100011', D: '110101101101110',
  E: '111100110100111', F: '111100110100100', G: '011100101101011', H: '101101111101101',
  I: '111010010010111', J: '001001001101010', K: '101101110101101', L: '100100100100111',
  M: '101111111101101', N: '110101101101101', O: '010101101101010', P: '110101110100100',
  Q: '010101101110011', R: '110101110101101', S: '011100010001110', T: '111010010010010',
  U: '101101101101111', V: '101101101101010', W: '101101111111101', X: '101101010101101',
  Y: '101101010010010', Z: '111001010100111',
  ' ': '000000000000000', '-': '000000111000000', '.': '000000000000010', ':': '000010000010000',
  '/': '001001010100100', _: '000000000000111', '=': '000111000111000', '%': '101001010100101',
  '(': '001010010010001', ')': '100010010010100', '+': '000010111010000', ',': '000000000010100',
  '#': '101111101111101', '?': '111001010000010', "'": '010010000000000', '!': '010010010000010',
};

const GLYPH_W = 3;
const GLYPH_H = 5;

/** Width in pixels of `text` in the built-in font at `fontScale` (1 px gap between glyphs). */
export function textWidth(text: string, fontScale = 1): number {
  return text.length === 0 ? 0 : (text.length * (GLYPH_W + 1) - 1) * fontScale;
}

// ---------------------------------------------------------------------------------------------
// The canvas

class Canvas {
  readonly rgba: Buffer;
  constructor(readonly width: number, readonly height: number, fill: readonly [number, number, number]) {
    if (width * height > 1 << 28) throw new RangeError(`image of ${width}×${height} pixels is too large`);
    this.rgba = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      this.rgba[4 * i] = fill[0];
      this.rgba[4 * i + 1] = fill[1];
      this.rgba[4 * i + 2] = fill[2];
      this.rgba[4 * i + 3] = 255;
    }
  }
  set(x: number, y: number, c: readonly [number, number, number]): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = 4 * (y * this.width + x);
    this.rgba[o] = c[0];
    this.rgba[o + 1] = c[1];
    this.rgba[o + 2] = c[2];
  }
  fillRect(x0: number, y0: number, w: number, h: number, c: readonly [number, number, number]): void {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) this.set(x, y, c);
  }
  /** Draws text with its top-left at (x, y), clipped to the box [x, clipX1) × [y, clipY1). */
  text(s: string, x: number, y: number, fontScale: number, c: readonly [number, number, number], clipX1 = this.width, clipY1 = this.height): void {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = GLYPHS[ch] ?? GLYPHS['?']!;
      for (let gy = 0; gy < GLYPH_H; gy++) {
        for (let gx = 0; gx < GLYPH_W; gx++) {
          if (g[gy * GLYPH_W + gx] !== '1') continue;
          for (let sy = 0; sy < fontScale; sy++) {
            for (let sx = 0; sx < fontScale; sx++) {
              const px = cx + gx * fontScale + sx;
              const py = y + gy * fontScale + sy;
              if (px < clipX1 && py < clipY1) this.set(px, py, c);
            }
          }
        }
      }
      cx += (GLYPH_W + 1) * fontScale;
    }
  }
  png(): Uint8Array {
    const png = new pngjs.PNG({ width: this.width, height: this.height });
    this.rgba.copy(png.data);
    const buf = pngjs.PNG.sync.write(png, { colorType: 2, inputColorType: 6, inputHasAlpha: true });
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
}

function contrastText(bg: readonly [number, number, number]): [number, number, number] {
  const lum = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2];
  return lum > 140 ? [0, 0, 0] : [255, 255, 255];
}

function positiveInt(v: number | undefined, name: string, fn: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${fn}: ${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Rendering

interface Rendered {
  canvas: Canvas;
  layout: GridLayout;
  px: Pixels;
}

function render(px: Pixels, cells: (number | null)[][], cols: number, opts: GridOptions, fn: string): Rendered {
  const scale = positiveInt(opts.scale, 'scale', fn) ?? Math.max(1, Math.ceil(56 / Math.min(px.h, px.w)));
  const padding = positiveInt(opts.padding, 'padding', fn, 0) ?? 2;
  const padColor = parseColor(opts.padColor ?? [255, 255, 255]);
  const rows = cells.length;
  const cellW = px.w * scale;
  const cellH = px.h * scale;

  const labels = opts.rowLabels ? Array.from({ length: rows }, (_, r) => String(opts.rowLabels![r] ?? '')) : undefined;
  const fontScale = cellH >= 40 ? 2 : 1;
  const maxText = labels ? Math.max(0, ...labels.map((l) => textWidth(l, fontScale))) : 0;
  const labelWidth = labels && maxText > 0 ? maxText + Math.max(padding, 2) : 0;

  const width = labelWidth + cols * cellW + (cols + 1) * padding;
  const height = rows * cellH + (rows + 1) * padding;
  const canvas = new Canvas(width, height, padColor);
  const layout: GridLayout = {
    width, height, rows, cols, imageHeight: px.h, imageWidth: px.w, scale, cellHeight: cellH, cellWidth: cellW,
    padding, labelWidth, cells, ...(labels ? { rowLabels: labels } : {}),
  };

  const { c: C, h: H, w: W, data, unit } = px;
  const rgb: [number, number, number] = [0, 0, 0];
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < cols; col++) {
      const idx = cells[r]![col];
      if (idx === null || idx === undefined) continue;
      const { x: ox, y: oy } = cellOrigin(layout, r, col);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          for (let ch = 0; ch < 3; ch++) {
            const src = C === 1 ? 0 : ch;
            rgb[ch] = toByte(Number(data[((idx * C + src) * H + y) * W + x]) * unit);
          }
          if (scale === 1) canvas.set(ox + x, oy + y, rgb);
          else canvas.fillRect(ox + x * scale, oy + y * scale, scale, scale, rgb);
        }
      }
    }
  }

  if (labels && labelWidth > 0) {
    const ink = opts.labelColor !== undefined ? parseColor(opts.labelColor) : contrastText(padColor);
    const textH = GLYPH_H * fontScale;
    for (let r = 0; r < rows; r++) {
      const { y } = cellOrigin(layout, r, 0);
      const ty = y + Math.max(0, Math.floor((cellH - textH) / 2));
      canvas.text(labels[r]!, Math.max(padding, 2) >> 1, ty, fontScale, ink, labelWidth, height);
    }
  }
  return { canvas, layout, px };
}

function gridShape(n: number, opts: GridOptions, fn: string): { rows: number; cols: number } {
  const rowsOpt = positiveInt(opts.rows, 'rows', fn);
  const colsOpt = positiveInt(opts.cols, 'cols', fn);
  let cols: number;
  let rows: number;
  if (colsOpt !== undefined) {
    cols = colsOpt;
    rows = rowsOpt ?? Math.ceil(n / cols);
  } else if (rowsOpt !== undefined) {
    rows = rowsOpt;
    cols = Math.ceil(n / rows);
  } else {
    cols = Math.ceil(Math.sqrt(n));
    rows = Math.ceil(n / cols);
  }
  if (rows * cols < n) throw new RangeError(`${fn}: a ${rows}×${cols} grid cannot hold ${n} images`);
  return { rows, cols };
}

function sequentialCells(n: number, rows: number, cols: number): (number | null)[][] {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => (r * cols + c < n ? r * cols + c : null)));
}

/** The layout imageGrid would use for `images` (without rendering). */
export function gridLayout(images: ImagesInput, opts: GridOptions = {}): GridLayout {
  const px = readPixels(images, 'gridLayout');
  const { rows, cols } = gridShape(px.n, opts, 'gridLayout');
  // rendering is cheap next to reading; reuse it so the two can never disagree
  return render(px, sequentialCells(px.n, rows, cols), cols, opts, 'gridLayout').layout;
}

/** A grid of the batch's images in order, row-major. Returns PNG bytes. */
export function imageGrid(images: ImagesInput, opts: GridOptions = {}): Uint8Array {
  const px = readPixels(images, 'imageGrid');
  const { rows, cols } = gridShape(px.n, opts, 'imageGrid');
  return render(px, sequentialCells(px.n, rows, cols), cols, opts, 'imageGrid').canvas.png();
}

export interface ClassGridOptions extends Omit<GridOptions, 'rows' | 'cols' | 'rowLabels'> {
  /** Names of the classes; shown as row labels instead of the indices. */
  classNames?: readonly string[];
  /** Row labels: true (default) draws the class index or name; false draws none. */
  rowLabels?: boolean;
}

/**
 * One row per class 0..numClasses−1 holding the first `perClass` images (in batch order) whose label
 * is that class; the rest of the row is left blank. `labels` is e.g. the teacher's argmax per image.
 */
export function classGrid(
  images: ImagesInput,
  labels: readonly number[] | Tensor,
  numClasses: number,
  perClass: number,
  opts: ClassGridOptions = {},
): { png: Uint8Array; layout: ClassGridLayout } {
  const fn = 'classGrid';
  positiveInt(numClasses, 'numClasses', fn);
  positiveInt(perClass, 'perClass', fn);
  const px = readPixels(images, fn);
  const ys = labels instanceof Tensor ? labels.toArray() : labels;
  if (ys.length !== px.n) throw new RangeError(`${fn}: ${ys.length} labels for ${px.n} images`);
  const counts = new Array<number>(numClasses).fill(0);
  const cells: (number | null)[][] = Array.from({ length: numClasses }, () => new Array<number | null>(perClass).fill(null));
  ys.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw new RangeError(`${fn}: label ${y} of image ${i} is not a class in [0, ${numClasses})`);
    if (counts[y]! < perClass) cells[y]![counts[y]!] = i;
    counts[y]!++;
  });
  const classes = Array.from({ length: numClasses }, (_, k) => k);
  const names = opts.classNames ? classes.map((k) => String(opts.classNames![k] ?? k)) : undefined;
  const rowLabels = opts.rowLabels === false ? undefined : (names ?? classes.map(String));
  const { canvas, layout } = render(px, cells, perClass, { ...opts, rows: undefined, cols: undefined, rowLabels }, fn);
  return {
    png: canvas.png(),
    layout: { ...layout, classes, counts, perClass, ...(names ? { classNames: names } : {}) },
  };
}

/** A box in the source image's pixel coordinates (x right, y down; x1, y1 are the far edges). */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  label: number | string;
  score?: number;
  color?: ColorSpec;
}

export interface BoxOptions extends GridOptions {
  /** Box coordinates are fractions of the image size ([0, 1]) instead of pixels. */
  normalized?: boolean;
  /** Draw the label (and score as a percentage) inside the box's top-left corner. Default false. */
  showLabels?: boolean;
}

function boxColor(b: Box): [number, number, number] {
  if (b.color !== undefined) return parseColor(b.color);
  let k: number;
  if (typeof b.label === 'number' && Number.isInteger(b.label)) k = Math.abs(b.label);
  else {
    k = 0;
    for (const ch of String(b.label)) k = (k * 31 + ch.charCodeAt(0)) >>> 0;
  }
  return parseColor(PALETTE[k % PALETTE.length]!);
}

/**
 * The image grid with each image's boxes drawn as 1-px rectangle outlines (in output pixels),
 * clamped to the image. `boxes[i]` are the boxes of image i (missing entries: no boxes).
 * Colour: the box's own, else a palette colour per label.
 */
export function drawBoxes(images: ImagesInput, boxes: readonly (readonly Box[])[], opts: BoxOptions = {}): Uint8Array {
  const fn = 'drawBoxes';
  const px = readPixels(images, fn);
  if (boxes.length > px.n) throw new RangeError(`${fn}: boxes for ${boxes.length} images but the batch has ${px.n}`);
  const { rows, cols } = gridShape(px.n, opts, fn);
  const { canvas, layout } = render(px, sequentialCells(px.n, rows, cols), cols, opts, fn);
  const s = layout.scale;
  const cw = layout.cellWidth;
  const ch = layout.cellHeight;
  boxes.forEach((list, i) => {
    const r = Math.floor(i / cols);
    const c = i % cols;
    const { x: ox, y: oy } = cellOrigin(layout, r, c);
    for (const b of list) {
      const fx = opts.normalized ? px.w : 1;
      const fy = opts.normalized ? px.h : 1;
      let x0 = Math.min(b.x0, b.x1) * fx * s;
      let x1 = Math.max(b.x0, b.x1) * fx * s;
      let y0 = Math.min(b.y0, b.y1) * fy * s;
      let y1 = Math.max(b.y0, b.y1) * fy * s;
      if (![x0, x1, y0, y1].every(Number.isFinite)) continue;
      if (x1 <= 0 || y1 <= 0 || x0 >= cw || y0 >= ch) continue; // wholly outside
      // pixel columns/rows covered, inclusive, clamped to the cell
      const px0 = Math.max(0, Math.floor(x0));
      const py0 = Math.max(0, Math.floor(y0));
      const px1 = Math.min(cw - 1, Math.max(px0, Math.ceil(x1) - 1));
      const py1 = Math.min(ch - 1, Math.max(py0, Math.ceil(y1) - 1));
      x0 = px0; x1 = px1; y0 = py0; y1 = py1;
      const col = boxColor(b);
      for (let x = x0; x <= x1; x++) {
        canvas.set(ox + x, oy + y0, col);
        canvas.set(ox + x, oy + y1, col);
      }
      for (let y = y0; y <= y1; y++) {
        canvas.set(ox + x0, oy + y, col);
        canvas.set(ox + x1, oy + y, col);
      }
      if (opts.showLabels) {
        const text = b.score !== undefined && Number.isFinite(b.score) ? `${b.label} ${Math.round(b.score * 100)}%` : String(b.label);
        const tw = textWidth(text);
        const bw = Math.min(tw + 2, x1 - x0 + 1);
        canvas.fillRect(ox + x0, oy + y0, bw, GLYPH_H + 2, col);
        canvas.text(text, ox + x0 + 1, oy + y0 + 1, 1, contrastText(col), ox + x0 + bw, oy + Math.min(ch, y0 + GLYPH_H + 2));
      }
    }
  });
  return canvas.png();
}

// ---------------------------------------------------------------------------------------------
// Files

/** Writes PNG bytes atomically (parents created). */
export function savePng(file: string, bytes: Uint8Array): void {
  writeFileAtomic(file, bytes);
}

/**
 * Writes a grid's layout beside its PNG (see layoutPathFor); the run report reads it to say which
 * row shows which class.
 */
export function saveGridLayout(pngFile: string, layout: GridLayout): void {
  writeJsonAtomic(layoutPathFor(pngFile), layout);
}

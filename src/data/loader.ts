// Mini-batches over an in-memory ImageDataset, with a shuffle that is a pure function of (seed, epoch).
//
// Order. Each epoch's permutation comes from a small JS PRNG (mulberry32) seeded by a hash of
// (seed, epoch) — not libtorch's global generator — so `epoch(e)` gives the same batches whenever it
// is called: resuming a run at epoch e reproduces it exactly, whatever ran before.
//
// Prefetch. Batch i+1 is gathered (index_select of its images and labels, or the JS gather when
// pixelAugment is set) before batch i is yielded. In-thread, this is bookkeeping, not a speed-up:
// Node runs the gather and the model's libtorch ops on the same JS thread, one after the other, so
// nothing overlaps and the total time is unchanged. With `workers: 1` a worker thread does the
// gather (and the optional `pixelAugment`) in plain JS on a shared copy of the pixels, up to two
// batches ahead, while the main thread runs libtorch; the main thread copies a finished
// Float32Array out of shared memory (the addon's fromTypedArray rejects SharedArrayBuffer-backed
// arrays) into a tensor, and blocks (Atomics.wait) only if the worker is behind. `workers: 1` and
// the in-thread path give identical batches for the same seed (tested). Whether it pays: the gather
// is small (well under 1 ms for 256 images of 28×28 with shift+flip), the worker has a start cost
// (a shared copy of every pixel: ~170 MB for Fashion-MNIST train), and on a 2-core machine it
// competes with libtorch's intra-op threads — measured epochs there were equal within noise. It is
// for large augmentations or spare cores.
//
// Augmentation. `pixelAugment` (random translation with zero fill, horizontal flip) is plain JS with
// its own PRNG seeded by (seed, epoch, batch), so it is reproducible and identical in both paths.
// `augment` is any tensor function (e.g. augment.ts's randomTranslate, which uses libtorch's global
// generator: reproducible only under manualSeed); it is applied to batch i just before batch i is
// yielded, in both paths, so the global generator sees the same sequence of calls either way.
//
// Ownership. Each yielded batch belongs to the consumer: its tensors are created during the
// iterator's next() call, so they belong to the tidy scope open at that moment, if any, and otherwise
// must be freed with `dispose(batch)`. The prefetched batch is held outside every scope (keep), so a
// tidy around one next() call cannot free it early; it is freed when the epoch ends or the loop
// breaks. Typical use:
//
//   for (const batch of loader.epoch(e)) {
//     tidy(() => step(batch.x, batch.y));
//     dispose(batch);
//   }
import { Worker } from 'node:worker_threads';
import { dispose, keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import type { ImageDataset } from './types.js';

// ---------------------------------------------------------------------------------------------
// Seeded PRNG and the gather. gatherBatch and workerLoop are also sent to the worker as source text
// (Function.toString), so they must stay self-contained: no imports and no module-level names other
// than each other (gatherBatch inlines its own copy of mulberry32 for that reason).

/** A 32-bit hash of a list of integers (each taken modulo 2^64); used to derive PRNG seeds. */
export function hashSeeds(parts: readonly number[]): number {
  let h = (0x9e3779b9 ^ parts.length) | 0;
  for (let i = 0; i < parts.length; i++) {
    const p = Math.trunc(parts[i]!);
    const words = [p >>> 0, Math.floor(p / 4294967296) >>> 0];
    for (let j = 0; j < 2; j++) {
      h = Math.imul(h ^ words[j]!, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
      h = (h + 0x9e3779b9) | 0;
    }
  }
  return h >>> 0;
}

/** mulberry32: a tiny, fast 32-bit PRNG. Returns a generator of uint32 values. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A uniform integer in [0, n) from a uint32 generator (n ≤ 2^21 keeps the bias below 2^-11). */
export function randBelow(next: () => number, n: number): number {
  return Math.floor((next() * n) / 4294967296);
}

/** A seeded permutation of 0..n−1 (Fisher–Yates). */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const next = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor((next() * (i + 1)) / 4294967296);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

export interface PixelAugment {
  /** Shift each image by its own (dx, dy) in [−translate, translate] pixels, zero fill. */
  translate?: number;
  /** Flip each image horizontally with probability 1/2. */
  flip?: boolean;
}

/**
 * Copies images[indices[b]] into out[b] for b < count (images [N, C, H, W] flat), applying the
 * optional shift/flip with a PRNG seeded by `seed`. Per image it draws dx, dy (if translate) then
 * the flip coin (if flip): out[c, y, x] = in[c, y + dy, x' + dx], x' = W − 1 − x when flipped.
 */
export function gatherBatch(
  images: Float32Array, C: number, H: number, W: number,
  indices: Int32Array, count: number,
  translate: number, flip: boolean, seed: number,
  out: Float32Array,
): void {
  const plane = H * W;
  const chw = C * plane;
  let a = seed | 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  for (let b = 0; b < count; b++) {
    const src = indices[b]! * chw;
    const dst = b * chw;
    let dx = 0;
    let dy = 0;
    let flipped = false;
    if (translate > 0) {
      dx = Math.floor((next() * (2 * translate + 1)) / 4294967296) - translate;
      dy = Math.floor((next() * (2 * translate + 1)) / 4294967296) - translate;
    }
    if (flip) flipped = next() >= 2147483648;
    if (dx === 0 && dy === 0 && !flipped) {
      out.set(images.subarray(src, src + chw), dst);
      continue;
    }
    for (let c = 0; c < C; c++) {
      const sc = src + c * plane;
      const dc = dst + c * plane;
      for (let y = 0; y < H; y++) {
        const sy = y + dy;
        const drow = dc + y * W;
        if (sy < 0 || sy >= H) {
          out.fill(0, drow, drow + W);
          continue;
        }
        const srow = sc + sy * W;
        for (let x = 0; x < W; x++) {
          const sx = (flipped ? W - 1 - x : x) + dx;
          out[drow + x] = sx < 0 || sx >= W ? 0 : images[srow + sx]!;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The worker: a synchronous request/ready protocol over shared memory, so the main thread's
// iterator can stay a plain (synchronous) Iterable.

const IDLE = 0;
const REQUESTED = 1;
const READY = 2;
const STOP = 3;
const FAILED = 4;
/** Int32 words of control per slot: state, count, seed. */
const CTRL = 4;
/** Batches the worker may work on ahead of the consumer. */
const SLOTS = 2;

interface WorkerInit {
  images: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
  indices: SharedArrayBuffer;
  out: SharedArrayBuffer;
  C: number;
  H: number;
  W: number;
  batchSize: number;
  slots: number;
  translate: number;
  flip: boolean;
}

/** Runs inside the worker (sent as source text). Serves slots round-robin until told to stop. */
function workerLoop(init: WorkerInit): void {
  const ctrl = new Int32Array(init.ctrl);
  const images = new Float32Array(init.images);
  const indices = new Int32Array(init.indices);
  const out = new Float32Array(init.out);
  const chw = init.C * init.H * init.W;
  const bs = init.batchSize;
  for (let k = 0; ; k = (k + 1) % init.slots) {
    const at = k * 4;
    let s: number;
    for (;;) {
      s = Atomics.load(ctrl, at);
      if (s === 1 || s === 3) break; // REQUESTED or STOP
      Atomics.wait(ctrl, at, s);
    }
    if (s === 3) return;
    try {
      gatherBatch(images, init.C, init.H, init.W, indices.subarray(k * bs, (k + 1) * bs), Atomics.load(ctrl, at + 1),
        init.translate, init.flip, Atomics.load(ctrl, at + 2), out.subarray(k * bs * chw, (k + 1) * bs * chw));
      Atomics.store(ctrl, at, 2); // READY
    } catch (e) {
      Atomics.store(ctrl, at, 4); // FAILED
      Atomics.notify(ctrl, at);
      throw e;
    }
    Atomics.notify(ctrl, at);
  }
}

const WORKER_SOURCE = `'use strict';
const { workerData } = require('node:worker_threads');
${gatherBatch.toString()}
${workerLoop.toString()}
workerLoop(workerData);
`;

class PrefetchWorker {
  readonly ctrl: Int32Array;
  readonly indices: Int32Array;
  readonly out: Float32Array;
  readonly worker: Worker;
  private readonly chw: number;
  /** Slot the next request goes to; the worker serves slots in the same round-robin order. */
  private cursor = 0;
  error: Error | null = null;

  constructor(pixels: Float32Array, C: number, H: number, W: number, readonly batchSize: number, aug: PixelAugment) {
    const images = new SharedArrayBuffer(pixels.byteLength);
    new Float32Array(images).set(pixels);
    const ctrl = new SharedArrayBuffer(SLOTS * CTRL * 4);
    const indices = new SharedArrayBuffer(SLOTS * batchSize * 4);
    const out = new SharedArrayBuffer(SLOTS * batchSize * C * H * W * 4);
    this.chw = C * H * W;
    this.ctrl = new Int32Array(ctrl);
    this.indices = new Int32Array(indices);
    this.out = new Float32Array(out);
    const init: WorkerInit = {
      images, ctrl, indices, out, C, H, W, batchSize, slots: SLOTS,
      translate: aug.translate ?? 0, flip: aug.flip ?? false,
    };
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: init });
    this.worker.on('error', (e) => { this.error = e; });
    this.worker.unref();
  }

  /** Asks for a batch; returns the slot it will appear in. */
  request(batchIndices: Int32Array, seed: number): number {
    const k = this.cursor;
    this.cursor = (this.cursor + 1) % SLOTS;
    const at = k * CTRL;
    if (Atomics.load(this.ctrl, at) !== IDLE) throw new Error('BatchLoader worker: slot still busy (protocol error)');
    this.indices.set(batchIndices, k * this.batchSize);
    Atomics.store(this.ctrl, at + 1, batchIndices.length);
    Atomics.store(this.ctrl, at + 2, seed | 0);
    Atomics.store(this.ctrl, at, REQUESTED);
    Atomics.notify(this.ctrl, at);
    return k;
  }

  /** Blocks until slot k is ready and returns a (non-shared) copy of its first `len` floats. */
  take(k: number, len: number): Float32Array {
    const at = k * CTRL;
    for (;;) {
      const s = Atomics.load(this.ctrl, at);
      if (s === READY) break;
      if (s === FAILED) throw new Error(`BatchLoader worker failed${this.error ? `: ${this.error.message}` : ''}`);
      if (s === STOP) throw new Error('BatchLoader: the worker was closed (close() during an epoch)');
      if (Atomics.wait(this.ctrl, at, s, 10_000) === 'timed-out' && Atomics.load(this.ctrl, at) === s) {
        throw new Error('BatchLoader worker: no batch after 10 s (worker gone?)');
      }
    }
    const start = k * this.batchSize * this.chw;
    const copy = this.out.slice(start, start + len);
    Atomics.store(this.ctrl, at, IDLE);
    return copy;
  }

  close(): void {
    for (let k = 0; k < SLOTS; k++) {
      Atomics.store(this.ctrl, k * CTRL, STOP);
      Atomics.notify(this.ctrl, k * CTRL);
    }
    void this.worker.terminate();
  }
}

// ---------------------------------------------------------------------------------------------

export interface BatchLoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (default true); false keeps dataset order. */
  shuffle?: boolean;
  /** Seed of the shuffle and of pixelAugment (default 0). */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /** A tensor transform of each batch's images, applied just before the batch is yielded. */
  augment?: (x: Tensor) => Tensor;
  /** Plain-JS, seeded shift/flip applied while gathering (in the worker when workers is 1). */
  pixelAugment?: PixelAugment;
  /** 0 (default): gather on the main thread. 1: gather (and pixelAugment) in a worker thread. */
  workers?: 0 | 1;
}

export interface Batch {
  /** [B, C, H, W] float32. */
  x: Tensor;
  /** [B] int64. */
  y: Tensor;
  /** Position of this batch in the epoch. */
  batch: number;
  /** Dataset indices of the batch's samples. */
  indices: Int32Array;
}

export class BatchLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly workers: 0 | 1;
  readonly size: number;
  private readonly augment: ((x: Tensor) => Tensor) | undefined;
  private readonly pixelAugment: PixelAugment | undefined;
  private readonly chw: [number, number, number];
  private pixels: Float32Array | null = null;
  private labelValues: BigInt64Array | null = null;
  private worker: PrefetchWorker | null = null;

  constructor(readonly data: ImageDataset, opts: BatchLoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`BatchLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    const shape = data.images.shape;
    if (shape.length !== 4) throw new Error(`BatchLoader: images must be [N, C, H, W], got [${shape.join(', ')}]`);
    if (data.labels.size(0) !== shape[0]) throw new Error(`BatchLoader: ${shape[0]} images but ${data.labels.size(0)} labels`);
    const seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new Error(`BatchLoader: seed must be an integer, got ${seed}`);
    const workers = opts.workers ?? 0;
    if (workers !== 0 && workers !== 1) throw new Error(`BatchLoader: workers must be 0 or 1, got ${String(workers)}`);
    const t = opts.pixelAugment?.translate ?? 0;
    if (!Number.isInteger(t) || t < 0) throw new Error(`BatchLoader: pixelAugment.translate must be a non-negative integer, got ${t}`);
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? true;
    this.seed = seed;
    this.dropLast = opts.dropLast ?? false;
    this.workers = workers;
    this.augment = opts.augment;
    this.pixelAugment = opts.pixelAugment && (t > 0 || opts.pixelAugment.flip) ? opts.pixelAugment : undefined;
    this.size = shape[0]!;
    this.chw = [shape[1]!, shape[2]!, shape[3]!];
  }

  /** Batches per epoch. */
  get numBatches(): number {
    return this.dropLast ? Math.floor(this.size / this.batchSize) : Math.ceil(this.size / this.batchSize);
  }

  /** The sample order of epoch e (a pure function of seed and e). */
  order(e: number): Int32Array {
    if (!Number.isSafeInteger(e) || e < 0) throw new Error(`BatchLoader: epoch must be a non-negative integer, got ${e}`);
    if (!this.shuffle) {
      const p = new Int32Array(this.size);
      for (let i = 0; i < p.length; i++) p[i] = i;
      return p;
    }
    return permutation(this.size, hashSeeds([this.seed, e]));
  }

  /** Seed of pixelAugment for batch b of epoch e. */
  private batchSeed(e: number, b: number): number {
    return hashSeeds([this.seed, e, b, 0x5a17]);
  }

  /** The batches of epoch e; see the file comment for ownership. */
  epoch(e: number): IterableIterator<Batch> {
    const order = this.order(e);
    return this.workers === 1 ? this.epochWorker(e, order) : this.epochInThread(e, order);
  }

  /** Stops the worker thread, if any (it is unref'd, so it never keeps the process alive). */
  close(): void {
    this.worker?.close();
    this.worker = null;
  }

  private batchIndices(order: Int32Array, b: number): Int32Array {
    return order.subarray(b * this.batchSize, Math.min(this.size, (b + 1) * this.batchSize));
  }

  private getPixels(): Float32Array {
    if (!this.pixels) {
      this.pixels = tidy(() => {
        const x = this.data.images.to({ dtype: 'float32', device: 'cpu' }).contiguous();
        return x.data() as Float32Array;
      });
    }
    return this.pixels;
  }

  private labelsOf(idx: Int32Array): Tensor {
    if (!this.labelValues) {
      this.labelValues = tidy(() => {
        const y = this.data.labels.to({ dtype: 'int64', device: 'cpu' }).contiguous();
        return y.data() as BigInt64Array;
      });
    }
    const out = new BigInt64Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = this.labelValues[idx[i]!]!;
    return tensor(out, { shape: [idx.length] });
  }

  /** Gathers batch b on this thread; the result is held outside every tidy scope. */
  private prepare(e: number, order: Int32Array, b: number): { x: Tensor; y: Tensor } {
    const idx = this.batchIndices(order, b);
    const [C, H, W] = this.chw;
    const prepared = tidy(() => {
      if (this.pixelAugment) {
        const out = new Float32Array(idx.length * C * H * W);
        gatherBatch(this.getPixels(), C, H, W, idx, idx.length, this.pixelAugment.translate ?? 0, this.pixelAugment.flip ?? false, this.batchSeed(e, b), out);
        return { x: tensor(out, { shape: [idx.length, C, H, W] }), y: this.labelsOf(idx) };
      }
      // On the dataset's own device and dtype.
      const index = tensor(BigInt64Array.from(idx, (i) => BigInt(i)), { shape: [idx.length], device: this.data.images.device });
      const yIndex = this.data.labels.device === this.data.images.device ? index : index.to(this.data.labels.device);
      return { x: this.data.images.indexSelect(0, index), y: this.data.labels.indexSelect(0, yIndex) };
    });
    keep(prepared.x);
    keep(prepared.y);
    return prepared;
  }

  /** Turns a prepared batch into the yielded one, owned by the scope open now. */
  private handOver(p: { x: Tensor; y: Tensor }, b: number, idx: Int32Array): Batch {
    try {
      let x: Tensor;
      if (this.augment) {
        const aug = this.augment;
        x = tidy(() => aug(p.x));
        if (x === p.x) x = p.x.detach();
      } else {
        x = p.x.detach();
      }
      return { x, y: p.y.detach(), batch: b, indices: idx };
    } finally {
      p.x.dispose();
      p.y.dispose();
    }
  }

  private *epochInThread(e: number, order: Int32Array): Generator<Batch, void, undefined> {
    const nb = this.numBatches;
    let next: { x: Tensor; y: Tensor } | null = null;
    try {
      if (nb > 0) next = this.prepare(e, order, 0);
      for (let b = 0; b < nb; b++) {
        const cur: { x: Tensor; y: Tensor } = next!;
        next = null;
        try {
          if (b + 1 < nb) next = this.prepare(e, order, b + 1);
        } catch (err) {
          dispose(cur);
          throw err;
        }
        yield this.handOver(cur, b, this.batchIndices(order, b));
      }
    } finally {
      if (next) dispose(next);
    }
  }

  private *epochWorker(e: number, order: Int32Array): Generator<Batch, void, undefined> {
    const nb = this.numBatches;
    const [C, H, W] = this.chw;
    if (!this.worker) this.worker = new PrefetchWorker(this.getPixels(), C, H, W, this.batchSize, this.pixelAugment ?? {});
    const w = this.worker;
    const pending: { slot: number; b: number }[] = [];
    let requested = 0;
    const fill = (): void => {
      while (requested < nb && pending.length < SLOTS) {
        pending.push({ slot: w.request(this.batchIndices(order, requested), this.batchSeed(e, requested)), b: requested });
        requested++;
      }
    };
    try {
      fill();
      for (let b = 0; b < nb; b++) {
        const { slot } = pending.shift()!;
        const idx = this.batchIndices(order, b);
        const pixels = w.take(slot, idx.length * C * H * W);
        fill();
        const p = tidy(() => ({ x: tensor(pixels, { shape: [idx.length, C, H, W] }), y: this.labelsOf(idx) }));
        keep(p.x);
        keep(p.y);
        yield this.handOver(p, b, idx);
      }
    } finally {
      // An abandoned epoch: let the worker finish what it was asked, so the slots stay in step.
      for (const { slot } of pending) {
        try {
          w.take(slot, 0);
        } catch {
          this.close();
          break;
        }
      }
    }
  }
}

// The image bank: recent synthetic images kept for replay (DeepInversion trains the student on its
// finished batches; tgan replays recent batches so the student does not forget; CMI's memory bank).
// A FIFO ring of fixed capacity, one preallocated tensor, outside every tidy scope.
import { cat, keep, noGrad, randint, tensor, tidy, zeros, type Device, type Tensor } from '../tensor/tensor.js';

export interface ImageBankOptions {
  /** Where the images are stored (default: the device of the first batch added). */
  device?: Device;
}

export class ImageBank {
  readonly capacity: number;
  readonly #device: Device | undefined;
  #images: Tensor | null = null;
  /** The slot the next image is written to; while the bank is not full, slots [0, size) are filled. */
  #next = 0;
  #size = 0;

  constructor(capacity: number, opts: ImageBankOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ImageBank: capacity must be a positive integer (images), got ${capacity}`);
    this.capacity = capacity;
    this.#device = opts.device;
  }

  /** Number of images stored. */
  get size(): number {
    return this.#size;
  }

  /** [C, H, W] of the stored images, once the first batch fixed it. */
  get imageShape(): number[] | null {
    return this.#images ? this.#images.shape.slice(1) : null;
  }

  #allocate(like: Tensor): Tensor {
    const t = keep(zeros([this.capacity, ...like.shape.slice(1)], { dtype: like.dtype, device: this.#device ?? like.device }));
    this.#images = t;
    return t;
  }

  /** Stores a detached copy of the batch x [n, C, H, W]; when full, the oldest images are overwritten first. */
  add(x: Tensor): void {
    if (x.ndim < 2) throw new Error(`ImageBank.add: expected a batch [n, ...], got [${x.shape.join(', ')}]`);
    const have = this.imageShape;
    const got = x.shape.slice(1);
    if (have && (have.length !== got.length || have.some((d, i) => d !== got[i]))) {
      throw new Error(`ImageBank.add: the bank holds [${have.join(', ')}] images, got [${got.join(', ')}]`);
    }
    const n = x.size(0);
    if (n === 0) return;
    noGrad(() =>
      tidy(() => {
        const images = this.#images ?? this.#allocate(x);
        const cap = this.capacity;
        if (n >= cap) {
          // only the newest `cap` images survive; store them oldest first from slot 0
          images.copy_(x.narrow(0, n - cap, cap));
          this.#next = 0;
          this.#size = cap;
          return;
        }
        const first = Math.min(n, cap - this.#next);
        images.narrow(0, this.#next, first).copy_(x.narrow(0, 0, first));
        if (first < n) images.narrow(0, 0, n - first).copy_(x.narrow(0, first, n - first));
        this.#next = (this.#next + n) % cap;
        this.#size = Math.min(cap, this.#size + n);
      }),
    );
  }

  /**
   * n images drawn uniformly (with replacement) from the stored ones, by libtorch's generator
   * (manualSeed makes it reproducible). A new tensor, detached, on the bank's device.
   */
  sample(n: number): Tensor {
    if (this.#size === 0 || !this.#images) throw new Error('ImageBank.sample: the bank is empty; add a batch first');
    const images = this.#images;
    return noGrad(() =>
      tidy(() => images.indexSelect(0, randint(0, this.#size, [n], { device: images.device }))),
    );
  }

  /** The newest min(n, size) images, oldest first (a copy the caller owns; all of them by default). */
  newest(n = this.#size): Tensor {
    if (this.#size === 0 || !this.#images) throw new Error('ImageBank.newest: the bank is empty; add a batch first');
    return noGrad(() =>
      tidy(() => {
        const all = this.#chronological();
        const k = Math.min(n, this.#size);
        return k === this.#size ? all : all.narrow(0, this.#size - k, k).clone();
      }),
    );
  }

  /** The stored images oldest first [size, C, H, W] (a copy). */
  #chronological(): Tensor {
    const images = this.#images!;
    if (this.#size < this.capacity) return images.narrow(0, 0, this.#size).clone();
    if (this.#next === 0) return images.clone();
    return cat([images.narrow(0, this.#next, this.capacity - this.#next), images.narrow(0, 0, this.#next)], 0);
  }

  /**
   * `${prefix}.images` (oldest first, a copy the caller owns) and `${prefix}.count` (int64 scalar):
   * enough to resume with the same contents and the same eviction order.
   */
  stateDict(prefix = 'bank'): Record<string, Tensor> {
    return noGrad(() =>
      tidy(() => {
        const out: Record<string, Tensor> = { [`${prefix}.count`]: tensor(this.#size, { dtype: 'int64' }) };
        if (this.#images && this.#size > 0) out[`${prefix}.images`] = this.#chronological();
        return out;
      }),
    );
  }

  /** Restores what stateDict saved (if it saved more images than this bank holds, the newest are kept). */
  loadStateDict(state: Record<string, Tensor>, prefix = 'bank'): void {
    const countT = state[`${prefix}.count`];
    if (!countT) throw new Error(`ImageBank.loadStateDict: missing key ${prefix}.count`);
    const count = countT.item();
    const images = state[`${prefix}.images`];
    if (count > 0 && (!images || images.size(0) !== count)) {
      throw new Error(`ImageBank.loadStateDict: ${prefix}.count is ${count} but ${prefix}.images holds ${images ? images.size(0) : 'no'} images`);
    }
    this.#next = 0;
    this.#size = 0;
    if (count > 0 && images) {
      this.#images?.dispose();
      this.#images = null;
      this.add(images);
    }
  }

  /** Frees the stored images; the bank is empty afterwards. */
  dispose(): void {
    this.#images?.dispose();
    this.#images = null;
    this.#next = 0;
    this.#size = 0;
  }
}

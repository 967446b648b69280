// Augmentation of images being synthesised (differentiable, so the image loss sees it).
import { rand, randint, stack, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { affineGrid, gridSample } from '../tensor/functional.js';

/** What randomJitterFlip drew, for logging and tests. */
export interface JitterFlip {
  dy: number;
  dx: number;
  flipped: boolean;
}

/**
 * DeepInversion's per-step augmentation (Yin et al. 2020, code `get_images`): the whole batch
 * [B, C, H, W] is rolled (circularly, so no pixel is lost) by one random (dy, dx), each uniform in
 * [−maxShift, maxShift], then flipped horizontally with probability flipProb. Randomness comes from
 * libtorch's generator (manualSeed). Differentiable with respect to x: a permutation of its pixels.
 */
export function randomJitterFlip(x: Tensor, maxShift: number, flipProb = 0.5): Tensor {
  return randomJitterFlipWithInfo(x, maxShift, flipProb).x;
}

/** randomJitterFlip, also returning the shift and flip it drew. */
export function randomJitterFlipWithInfo(x: Tensor, maxShift: number, flipProb = 0.5): { x: Tensor } & JitterFlip {
  if (x.ndim !== 4) throw new Error(`randomJitterFlip: expected images [B, C, H, W], got [${x.shape.join(', ')}]`);
  if (!Number.isInteger(maxShift) || maxShift < 0) throw new RangeError(`randomJitterFlip: maxShift must be a non-negative integer, got ${maxShift}`);
  return tidy(() => {
    const [dy, dx] = maxShift > 0 ? randint(-maxShift, maxShift + 1, [2]).toArray() as [number, number] : [0, 0];
    const flipped = flipProb > 0 && rand([1]).item() < flipProb;
    let out = dy !== 0 || dx !== 0 ? x.roll([dy, dx], [2, 3]) : x.mul(1);
    if (flipped) out = out.flip(3);
    return { x: out, dy, dx, flipped };
  });
}

export interface RandomAffineOptions {
  /** Each image is zoomed by a factor drawn uniformly from [1 − scale, 1 + scale]. */
  scale: number;
  /** Shift, each axis uniform in ±shift pixels. */
  shift: number;
  /** Rotation, uniform in ±rotate degrees. */
  rotate: number;
  /** Value of the area uncovered by the transform (e.g. the normalised value of a black pixel). */
  fill: number | number[];
}

/**
 * A random affine transform per image (zoom, shift, rotation), bilinear, differentiable with respect
 * to x. Plug-In Inversion (Ghiasi et al., 2022) found that ViTs, which have no BatchNorm statistics to
 * anchor an inversion, give recognisable images only when the synthesised image must keep the
 * teacher's decision under such random views; without them the teacher's confident inputs are
 * patch-grid textures (what our sample grids showed).
 */
export function randomAffine(x: Tensor, o: RandomAffineOptions): Tensor {
  if (x.ndim !== 4) throw new Error(`randomAffine: expected images [B, C, H, W], got [${x.shape.join(', ')}]`);
  const [B, C, H, W] = x.shape as [number, number, number, number];
  return tidy(() => {
    const u = (): Tensor => rand([B], { device: x.device }).mul(2).sub(1);
    const s = u().mul(o.scale).add(1).reciprocal(); // output → input coordinates: divide by the zoom
    const a = u().mul((o.rotate * Math.PI) / 180);
    const cos = a.cos().mul(s);
    const sin = a.sin().mul(s);
    const tx = u().mul((2 * o.shift) / W);
    const ty = u().mul((2 * o.shift) / H);
    const theta = stack([cos, sin.neg(), tx, sin, cos, ty], 1).reshape([B, 2, 3]).to(x.dtype);
    const grid = affineGrid(theta, [B, C, H, W], false);
    const fills = typeof o.fill === 'number' ? new Array<number>(C).fill(o.fill) : o.fill;
    if (fills.length !== C) throw new Error(`randomAffine: ${fills.length} fill values for ${C} channels`);
    const fillT = tensor(fills, { shape: [1, C, 1, 1], device: x.device }).to(x.dtype);
    return gridSample(x.sub(fillT), grid).add(fillT);
  });
}

/** The affine views of tgan and dafl: zoom ±scale, shift ±shift px, rotation ±rotate° (0/0/0: off). */
export interface AffineViews {
  augScale: number;
  augShift: number;
  augRotate: number;
}

/**
 * A random affine view of x (randomAffine), its uncovered border black in the normalised space of
 * `mean`/`std`; x itself when the views are off.
 */
export function affineView(x: Tensor, v: AffineViews, norm: { mean: readonly number[]; std: readonly number[] }): Tensor {
  if (v.augScale === 0 && v.augShift === 0 && v.augRotate === 0) return x;
  return randomAffine(x, { scale: v.augScale, shift: v.augShift, rotate: v.augRotate, fill: norm.mean.map((m, i) => -m / norm.std[i]!) });
}

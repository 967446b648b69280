// Augmentation of images being synthesised (differentiable, so the image loss sees it).
import { rand, randint, tidy, type Tensor } from '../tensor/tensor.js';

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

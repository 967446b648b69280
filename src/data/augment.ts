// Batched data augmentation and normalisation as tensor ops (no per-pixel JS loops).
import { pad } from '../tensor/functional.js';
import { rand, randint, stack, tensor, where, type Tensor } from '../tensor/tensor.js';

/** (x − mean) / std per channel; x: [B, C, H, W]. */
export function normalize(x: Tensor, mean: readonly number[], std: readonly number[]): Tensor {
  const c = x.size(1);
  if (mean.length !== c || std.length !== c) throw new Error(`normalize: ${c} channels but ${mean.length} means / ${std.length} stds`);
  const m = tensor([...mean], { shape: [1, c, 1, 1], device: x.device });
  const s = tensor([...std], { shape: [1, c, 1, 1], device: x.device });
  const out = x.sub(m).div(s);
  m.dispose();
  s.dispose();
  return out;
}

/** The inverse of normalize: back to pixel space. */
export function denormalize(x: Tensor, mean: readonly number[], std: readonly number[]): Tensor {
  const c = x.size(1);
  const m = tensor([...mean], { shape: [1, c, 1, 1], device: x.device });
  const s = tensor([...std], { shape: [1, c, 1, 1], device: x.device });
  const out = x.mul(s).add(m);
  m.dispose();
  s.dispose();
  return out;
}

/**
 * Shifts each image by its own random (dx, dy) in [−maxShift, maxShift] pixels, filling with `fill`
 * (zero-padding then a per-sample crop, as torchvision's RandomCrop(padding=maxShift)).
 */
export function randomTranslate(x: Tensor, maxShift: number, fill = 0): Tensor {
  if (maxShift <= 0) return x.clone();
  const [B, , H, W] = x.shape as [number, number, number, number];
  const padded = pad(x, [maxShift, maxShift, maxShift, maxShift], 'constant', fill);
  const offsets = randint(0, 2 * maxShift + 1, [B, 2]).toArray();
  const crops: Tensor[] = [];
  for (let i = 0; i < B; i++) {
    const img = padded.select(0, i);
    const rows = img.narrow(1, offsets[2 * i]!, H);
    crops.push(rows.narrow(2, offsets[2 * i + 1]!, W));
    img.dispose();
    rows.dispose();
  }
  const out = stack(crops, 0);
  for (const c of crops) c.dispose();
  padded.dispose();
  return out;
}

/** Flips each image horizontally with probability p. */
export function randomHorizontalFlip(x: Tensor, p = 0.5): Tensor {
  const B = x.size(0);
  const coin = rand([B, 1, 1, 1], { device: x.device });
  const mask = coin.lt(p);
  const flipped = x.flip(3);
  const out = where(mask, flipped, x);
  coin.dispose();
  mask.dispose();
  flipped.dispose();
  return out;
}

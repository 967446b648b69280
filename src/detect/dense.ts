// A dense auxiliary loss on the encoder for detector training (training only; not part of the model
// or its exports): a linear head classifies every patch token as the class of the object whose box
// contains the token's centre (the smallest such box), or background — the per-token supervision of
// two-stage Deformable DETR's encoder proposals, here as plain token classification. Measured on the
// canvases: DETR's set loss alone localises within minutes but learns the digit classes slowly (every
// class signal passes through a matching that changes from step to step); the dense term gives the
// encoder a stable class signal at every token from the first step.
import { crossEntropy } from '../tensor/functional.js';
import { ones, noGrad, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { Linear } from '../nn/layers.js';
import { cxcywhToXyxy } from './boxes.js';
import type { DetectionTarget } from './loss.js';

/** Background weight in the token CE (DETR's eos_coef: background tokens outnumber object tokens). */
export const DENSE_BACKGROUND_WEIGHT = 0.1;

/** Per image, the class index of every token of a g×g grid (row-major), C = background. */
export function tokenTargets(targets: readonly DetectionTarget[], grid: number, numClasses: number): BigInt64Array {
  const out = new BigInt64Array(targets.length * grid * grid).fill(BigInt(numClasses));
  targets.forEach((t, b) => {
    const boxes = t.boxes.map((bx) => cxcywhToXyxy(bx));
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        const x = (gx + 0.5) / grid;
        const y = (gy + 0.5) / grid;
        let best = -1;
        let bestArea = Infinity;
        boxes.forEach((bx, j) => {
          if (x >= bx[0] && x < bx[2] && y >= bx[1] && y < bx[3]) {
            const area = (bx[2] - bx[0]) * (bx[3] - bx[1]);
            if (area < bestArea) {
              bestArea = area;
              best = j;
            }
          }
        });
        if (best >= 0) out[(b * grid + gy) * grid + gx] = BigInt(t.labels[best]!);
      }
    }
  });
  return out;
}

/** The token classifier and its loss. */
export class DenseTokenHead extends Linear {
  constructor(dim: number, readonly numClasses: number) {
    super(dim, numClasses + 1);
  }
  /** Weighted CE of every token of `tokens` [B, N, D] against the token targets. */
  loss(tokens: Tensor, targets: readonly DetectionTarget[]): Tensor {
    return tidy(() => {
      const [B, N] = tokens.shape as [number, number];
      const g = Math.round(Math.sqrt(N));
      if (g * g !== N) throw new Error(`dense token loss: ${N} tokens is not a square grid`);
      const y = tensor(tokenTargets(targets, g, this.numClasses), { shape: [B * N] });
      const w = ones([this.numClasses + 1], { dtype: tokens.dtype });
      noGrad(() => w.select(0, this.numClasses).fill_(DENSE_BACKGROUND_WEIGHT));
      return crossEntropy(this.forward(tokens).reshape([B * N, this.numClasses + 1]), y, { weight: w });
    });
  }
}

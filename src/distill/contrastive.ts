// Contrastive diversity (CMI, Fang et al. 2021): InfoNCE over teacher features of two views of each
// synthetic image, with earlier batches' features as negatives, so that new samples are pushed away
// from one another and from what was synthesised before. `cmi` builds its synthesis on these pieces;
// ContrastiveTerm is the same term as an add-on for another generator's loss (tgan's --w-cr).
import { arange, cat, noGrad, rand, randperm, stack, tidy, type Tensor } from '../tensor/tensor.js';
import { affineGrid, crossEntropy, gridSample } from '../tensor/functional.js';
import { Adam, type OptimizerMeta } from '../nn/optim.js';
import { Linear, ReLU } from '../nn/layers.js';
import { Module, Sequential } from '../nn/module.js';
import { ImageBank } from './bank.js';
import { putModuleState, putOptimizerState, unprefixed } from './common.js';
import type { MethodState } from './types.js';

/**
 * InfoNCE (CMI's contrastive term): for every anchor a_i [N, D], the logits are a_i·k_j / τ over the
 * keys k = [positive; negatives] ([N + M, D]) and the target is k_i, its own positive:
 *   L = −(1/N) Σ_i log( exp(a_i·p_i/τ) / (Σ_j exp(a_i·p_j/τ) + Σ_m exp(a_i·n_m/τ)) ).
 * The other rows of `positive` are negatives for row i, as in CMI's cross-entropy over the batch.
 * Inputs are used as given (CMI's head L2-normalises them first); nothing is detached here — the
 * caller detaches the keys, as CMI does. `negatives` may be null or empty (M = 0).
 */
export function contrastiveLoss(anchor: Tensor, positive: Tensor, negatives: Tensor | null, tau: number): Tensor {
  if (!(tau > 0)) throw new RangeError(`contrastiveLoss: temperature must be > 0, got ${tau}`);
  if (anchor.ndim !== 2 || positive.ndim !== 2 || anchor.size(0) !== positive.size(0) || anchor.size(1) !== positive.size(1)) {
    throw new Error(`contrastiveLoss: anchor [${anchor.shape.join(', ')}] and positive [${positive.shape.join(', ')}] must both be [N, D]`);
  }
  if (negatives && (negatives.ndim !== 2 || negatives.size(1) !== anchor.size(1))) {
    throw new Error(`contrastiveLoss: negatives [${negatives.shape.join(', ')}] must be [M, ${anchor.size(1)}]`);
  }
  return tidy(() => {
    const keys = negatives && negatives.size(0) > 0 ? cat([positive, negatives], 0) : positive;
    const logits = anchor.mm(keys.t()).div(tau);
    const target = arange(0, anchor.size(0), 1, { dtype: 'int64', device: anchor.device });
    return crossEntropy(logits, target);
  });
}

/** x / max(‖x‖₂, 1e-12) per row (torch.nn.functional.normalize). */
export function l2Normalize(x: Tensor): Tensor {
  return tidy(() => x.div(x.norm(2, 1, true).clampMin(1e-12)));
}

/** CMI's MLPHead: Linear(F → hidden), ReLU, Linear(hidden → out), then L2 normalisation (keys head.0 / head.2, as CMI's). */
export class ProjectionHead extends Module {
  head: Sequential;
  constructor(readonly inFeatures: number, readonly outFeatures: number, hidden = inFeatures) {
    super();
    this.head = new Sequential(new Linear(inFeatures, hidden), new ReLU(), new Linear(hidden, outFeatures));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => l2Normalize(this.head.forward(x)));
  }
}

/**
 * A random resized crop per image (torchvision's / kornia's RandomResizedCrop): area fraction
 * s ~ U[minScale, maxScale], aspect ratio r log-uniform in `ratio` (default [3/4, 4/3]), crop w = √(s·r), h = √(s/r) of
 * the sides (clamped to 1), at a uniform position inside the image, resized back to H×W bilinearly;
 * flipped horizontally with probability flipProb. Differentiable with respect to x; random numbers
 * from libtorch's generator.
 */
export function randomResizedCrop(x: Tensor, o: { minScale: number; maxScale?: number; ratio?: [number, number]; flipProb?: number }): Tensor {
  if (x.ndim !== 4) throw new Error(`randomResizedCrop: expected images [B, C, H, W], got [${x.shape.join(', ')}]`);
  const maxScale = o.maxScale ?? 1;
  if (!(o.minScale > 0 && o.minScale <= maxScale && maxScale <= 1)) throw new RangeError(`randomResizedCrop: need 0 < minScale ≤ maxScale ≤ 1, got ${o.minScale}, ${maxScale}`);
  if (o.ratio && !(o.ratio[0] > 0 && o.ratio[0] <= o.ratio[1])) throw new RangeError(`randomResizedCrop: need 0 < ratio[0] ≤ ratio[1], got [${o.ratio.join(', ')}]`);
  const [B, C, H, W] = x.shape as [number, number, number, number];
  return tidy(() => {
    const u = (): Tensor => rand([B], { device: x.device });
    const s = u().mul(maxScale - o.minScale).add(o.minScale);
    const [r0, r1] = o.ratio ?? [3 / 4, 4 / 3];
    const logR = u().mul(Math.log(r1) - Math.log(r0)).add(Math.log(r0));
    const r = logR.exp();
    const w = s.mul(r).sqrt().clamp(null, 1);
    const h = s.div(r).sqrt().clamp(null, 1);
    // centre in normalised coordinates: the crop [c − w, c + w] stays inside [−1, 1]
    const cx = u().mul(2).sub(1).mul(w.neg().add(1));
    const cy = u().mul(2).sub(1).mul(h.neg().add(1));
    const flipP = o.flipProb ?? 0;
    const sign = flipP > 0 ? u().lt(flipP).to(x.dtype).mul(-2).add(1) : null;
    const wx = sign ? w.mul(sign) : w;
    const zero = w.mul(0);
    const theta = stack([wx, zero, cx, zero, h, cy], 1).reshape([B, 2, 3]).to(x.dtype);
    return gridSample(x, affineGrid(theta, [B, C, H, W], false), { padding: 'border' });
  });
}


/**
 * The contrastive term as an add-on to a generator loss: L_cr = InfoNCE(h(f_local), sg[h(f_global)];
 * h(memory)) — for sample i the positive is its own global view, the negatives the batch's other
 * global views and up to `negatives` global features of earlier batches (a ring of `memory` features,
 * stored raw and projected by the current head). The head h trains on L_cr with its own Adam (call
 * zeroGrad before the loss's backward and step after). Simplified against `cmi`: the memory's features
 * are negatives only (cmi also uses them as anchors that train the head).
 */
export class ContrastiveTerm {
  readonly head: ProjectionHead;
  readonly opt: Adam;
  readonly memory: ImageBank;
  constructor(featureDim: number, o: { headDim: number; memory: number; negatives: number; tau: number; lr: number }, readonly negatives = o.negatives, readonly tau = o.tau) {
    this.head = new ProjectionHead(featureDim, o.headDim);
    this.opt = new Adam(this.head.parameters(), { lr: o.lr });
    this.memory = new ImageBank(o.memory);
  }

  loss(local: Tensor, global: Tensor): Tensor {
    return tidy(() => {
      const mem = this.memory.size === 0 ? null : noGrad(() => {
        const all = this.memory.newest();
        return this.memory.size <= this.negatives ? all : all.indexSelect(0, randperm(this.memory.size, { device: all.device }).narrow(0, 0, this.negatives));
      });
      const keys = this.head.forward(mem ? cat([global, mem], 0) : global).detach();
      const B = local.size(0);
      return contrastiveLoss(this.head.forward(local), keys.narrow(0, 0, B), mem ? keys.narrow(0, B, mem.size(0)) : null, this.tau);
    });
  }

  /** The batch's global features join the memory (detached copies). */
  remember(global: Tensor): void {
    this.memory.add(global.detach());
  }

  stateDict(prefix: string): MethodState {
    const tensors: Record<string, Tensor> = this.memory.stateDict(`${prefix}memory`);
    putModuleState(tensors, `${prefix}head.`, this.head);
    return { tensors, meta: { [`${prefix}optim`]: putOptimizerState(tensors, `${prefix}optim.`, this.opt) } };
  }

  loadStateDict(s: MethodState, prefix: string): void {
    this.head.loadStateDict(unprefixed(`${prefix}head.`, s.tensors));
    const meta = s.meta[`${prefix}optim`] as OptimizerMeta | undefined;
    if (!meta) throw new Error(`method state has no ${prefix}optim metadata`);
    this.opt.loadStateDict({ state: unprefixed(`${prefix}optim.`, s.tensors), meta });
    this.memory.loadStateDict(s.tensors, `${prefix}memory`);
  }

  dispose(): void {
    this.head.dispose();
    this.opt.disposeState();
    this.memory.dispose();
  }
}

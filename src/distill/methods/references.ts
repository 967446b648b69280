// The reference bounds of every distillation table (METHODS.md), run by the same loop:
//   kd      — KD(T, S; τ = 4) on the REAL training images (+ optional CE with labels): upper reference.
//   noise   — KD on x ~ N(0, 1) in the normalised input space: lower reference.
//   scratch — the student trained on real labelled data alone (CE), no teacher.
// These are not data-free: kd and scratch read ctx.realTrain.
import { randint, randn, type Tensor } from '../../tensor/tensor.js';
import { crossEntropy } from '../../tensor/functional.js';
import { normalize, randomTranslate } from '../../data/augment.js';
import { studentKD } from '../common.js';
import type { DistillContext, DistillMethod, MethodState, StudentLoss, SyntheticBatch } from '../types.js';

export const REFERENCE_DEFAULTS = { tau: 4, ceWeight: 0, lrS: 1e-3, translate: 2 };
export type ReferenceHparams = typeof REFERENCE_DEFAULTS;

abstract class Reference implements DistillMethod {
  abstract readonly name: string;
  readonly studentStepsPerIteration = 1;
  readonly studentOptimizer;
  readonly hparams: ReferenceHparams;
  constructor(_ctx: DistillContext, overrides: Partial<ReferenceHparams> = {}) {
    this.hparams = { ...REFERENCE_DEFAULTS, ...overrides };
    this.studentOptimizer = { kind: 'adam' as const, lr: this.hparams.lrS };
  }
  abstract synthesize(ctx: DistillContext, iteration: number): SyntheticBatch;
  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    return studentKD(ctx, batch, { tau: this.hparams.tau, ceWeight: this.hparams.ceWeight });
  }
  previewBatch(ctx: DistillContext, n: number): Tensor {
    return this.synthesize(ctx, 0).x.narrow(0, 0, Math.min(n, ctx.batchSize));
  }
  stateDict(): MethodState {
    return { tensors: {}, meta: {} };
  }
  loadStateDict(): void {}
  dispose(): void {}
}

function realBatch(ctx: DistillContext, translate: number): SyntheticBatch {
  const data = ctx.realTrain;
  if (!data) throw new Error('this reference needs the real training set (it is not data-free)');
  const idx = randint(0, data.labels.size(0), [ctx.batchSize]);
  let x = data.images.indexSelect(0, idx);
  if (translate > 0) x = randomTranslate(x, translate);
  return { x: normalize(x, data.mean, data.std), y: data.labels.indexSelect(0, idx), logs: {} };
}

export class KdReal extends Reference {
  readonly name = 'kd';
  synthesize(ctx: DistillContext): SyntheticBatch {
    return realBatch(ctx, this.hparams.translate);
  }
}

export class NoiseKd extends Reference {
  readonly name = 'noise';
  synthesize(ctx: DistillContext): SyntheticBatch {
    return { x: randn([ctx.batchSize, ...ctx.inputShape]), logs: {} };
  }
}

export class Scratch extends Reference {
  readonly name = 'scratch';
  synthesize(ctx: DistillContext): SyntheticBatch {
    return realBatch(ctx, this.hparams.translate);
  }
  override studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    const ce = crossEntropy(ctx.student.forward(batch.x).logits, batch.y!, { labelSmoothing: 0.1 });
    return { loss: ce, logs: { 'S/ce': ce.item() } };
  }
}

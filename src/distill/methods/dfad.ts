// `dfad` — Data-Free Adversarial Distillation (Fang et al., 2019): a min-max game on the mean
// absolute logit discrepancy D = mean |T(x) − S(x)|. The generator maximises D (L_G = −D); the
// student minimises it, 5 student steps (each on a fresh generator sample) per generator step.
import { noGrad, type Tensor } from '../../tensor/tensor.js';
import type { DCGANGenerator } from '../../models/generators.js';
import { dcganTrainer, GeneratorMethod, GeneratorTrainer, teacherLogits } from '../common.js';
import { meanAbsoluteDiscrepancy } from '../losses.js';
import type { DistillContext, DistillMethod, StudentLoss, SyntheticBatch } from '../types.js';

export const DFAD_DEFAULTS = {
  studentSteps: 5,
  lrG: 1e-3,
  /** DFAD uses SGD 0.1 (0.01 on MNIST) for CNN students; Adam 1e-3 suits ViT students here. */
  lrS: 1e-3,
  latentDim: 256,
  baseChannels: 32,
};
export type DfadHparams = typeof DFAD_DEFAULTS;

export class Dfad extends GeneratorMethod<DCGANGenerator> implements DistillMethod {
  readonly name: string = 'dfad';
  readonly studentStepsPerIteration: number;
  readonly studentOptimizer;
  readonly hparams: DfadHparams;
  protected readonly gen: GeneratorTrainer<DCGANGenerator>;

  constructor(ctx: DistillContext, overrides: Partial<DfadHparams> = {}) {
    super();
    const h = { ...DFAD_DEFAULTS, ...overrides };
    this.hparams = h;
    this.studentStepsPerIteration = h.studentSteps;
    this.studentOptimizer = { kind: 'adam' as const, lr: h.lrS };
    this.gen = dcganTrainer(ctx, h);
  }

  /** The generator's objective to maximise (the discrepancy), on a fresh sample. */
  protected adversarialObjective(ctx: DistillContext, x: Tensor): { objective: Tensor; logs: Record<string, number> } {
    const d = meanAbsoluteDiscrepancy(ctx.teacher.forward(x).logits, ctx.student.forward(x).logits);
    return { objective: d, logs: { 'G/discrepancy': d.item() } };
  }

  synthesize(ctx: DistillContext): SyntheticBatch {
    const x = this.gen.generator.forward(this.gen.latent(ctx.batchSize));
    const { objective, logs } = this.adversarialObjective(ctx, x);
    this.gen.step(objective.neg(), ctx);
    return { x: x.detach(), logs };
  }

  /** Each student step gets its own fresh sample from the (just updated) generator. */
  studentBatch(ctx: DistillContext, fresh: SyntheticBatch, k: number): SyntheticBatch {
    if (k === 0) return fresh;
    return { x: noGrad(() => this.gen.generator.forward(this.gen.latent(ctx.batchSize))), logs: {} };
  }

  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    const d = meanAbsoluteDiscrepancy(teacherLogits(ctx, batch.x), ctx.student.forward(batch.x).logits);
    return { loss: d, logs: { 'S/discrepancy': d.item() } };
  }
}

// `dafl` — Data-Free Learning of Student Networks (Chen et al., ICCV 2019).
//   L_G = L_oh + α·L_a + β·L_ie   (one-hot confidence, feature activation, information entropy)
//   student: KD(T, S; τ = 1) on the same (detached) batch. One G and one S update per iteration.
// Our addition (off by default, --aug-scale/--aug-shift/--aug-rotate): the student's batch is a random
// affine view of the generator's (tgan's views), labelled by the teacher on that view — more distinct
// inputs per generated batch, the diversity lever of issue 15, at the cost of one grid sample.
import type { DCGANGenerator } from '../../models/generators.js';
import { dcganTrainer, GeneratorMethod, GeneratorTrainer, studentKD } from '../common.js';
import { affineView } from '../augment.js';
import { hparamChecks } from '../hparams.js';
import { activationLoss, informationEntropyLoss, oneHotLoss } from '../losses.js';
import type { DistillContext, DistillMethod, StudentLoss, SyntheticBatch } from '../types.js';

export const DAFL_DEFAULTS = {
  /** Published MNIST weights: α = 0.1, β = 5. */
  alpha: 0.1,
  beta: 5,
  /**
   * DAFL's published lr_G for MNIST is 0.2 (batch 512). Measured deviation (issue 19; shipped LeNet-5 →
   * LeNet-5-Half, 120 iterations, seed 0, val accuracy): at 0.2 the generator collapses onto one class
   * (the teacher reads every sample as one digit, the student's KD → 2e-6, val 9.4%) at batch 64 and 128
   * (and still at 600 iterations), works at 256 (76.5%); at 0.05 it does not collapse at 64 / 128 / 256
   * (72.6 / 73.3 / 73.3%; 89.8% after 600 iterations at 128); 0.02 and 0.01 learn slower (71.0 / 69.4% at 128).
   */
  lrG: 0.05,
  lrS: 2e-3,
  tau: 1,
  latentDim: 100,
  /** Generator width: DAFL uses 128/64 channels; MEASURED.md: generator convolutions dominate here, so 64/32 by default. */
  baseChannels: 32,
  /**
   * Random affine views of the student's batch (zoom ±augScale, shift ±augShift px, rotation ±augRotate°;
   * the teacher labels the view). 0/0/0 = DAFL as published (the default).
   */
  augScale: 0,
  augShift: 0,
  augRotate: 0,
};
export type DaflHparams = typeof DAFL_DEFAULTS;

const { nonNegative: requireNonNegative } = hparamChecks('dafl');

export class Dafl extends GeneratorMethod<DCGANGenerator> implements DistillMethod {
  readonly name = 'dafl';
  readonly studentStepsPerIteration = 1;
  readonly studentOptimizer;
  readonly hparams: DaflHparams;
  protected readonly gen: GeneratorTrainer<DCGANGenerator>;

  constructor(ctx: DistillContext, overrides: Partial<DaflHparams> = {}) {
    super();
    const h = { ...DAFL_DEFAULTS, ...overrides };
    this.hparams = h;
    for (const k of ['augScale', 'augShift', 'augRotate'] as const) requireNonNegative(k, h[k]);
    this.studentOptimizer = { kind: 'adam' as const, lr: h.lrS };
    this.gen = dcganTrainer(ctx, h);
  }

  studentBatch(ctx: DistillContext, fresh: SyntheticBatch): SyntheticBatch {
    const x = affineView(fresh.x, this.hparams, ctx);
    return x === fresh.x ? fresh : { ...fresh, x };
  }

  synthesize(ctx: DistillContext): SyntheticBatch {
    const h = this.hparams;
    const x = this.gen.generator.forward(this.gen.latent(ctx.batchSize));
    const out = ctx.teacher.forward(x);
    const oh = oneHotLoss(out.logits);
    const act = activationLoss(out.feature);
    const ie = informationEntropyLoss(out.logits);
    const lossG = oh.add(act.mul(h.alpha)).add(ie.mul(h.beta));
    this.gen.step(lossG, ctx);
    return { x: x.detach(), logs: { 'G/oh': oh.item(), 'G/act': act.item(), 'G/ie': ie.item(), 'G/total': lossG.item() } };
  }

  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    return studentKD(ctx, batch, { tau: this.hparams.tau });
  }
}

// `deepinv` — model inversion with a ViT prior: DeepInversion (Yin et al., CVPR 2020) with
// PSAQ-ViT's patch-similarity entropy in place of BatchNorm statistics (Li et al., ECCV 2022).
// No generator: a batch of images x (init N(0, 1)) with random target labels y is optimised
// directly with Adam, random jitter and flips each step:
//   L = CE(T(x), y) + α_tv·TV(x) + α_l2·‖x‖² + α_ps·R_ps(x) [+ α_adv·(−JS(σ(T(x)) ‖ σ(S(x))))]
// Finished batches go into an image bank; the student learns KD on samples from the bank.
import { keep, randint, randn, type Tensor } from '../../tensor/tensor.js';
import { crossEntropy } from '../../tensor/functional.js';
import { Adam } from '../../nn/optim.js';
import { ImageBank } from '../bank.js';
import { randomJitterFlip } from '../augment.js';
import { putOptimizerState, studentKD, unprefixed } from '../common.js';
import { jensenShannon, l2Prior, patchSimilarityPrior, totalVariation } from '../losses.js';
import type { DistillContext, DistillMethod, MethodState, StudentLoss, SyntheticBatch } from '../types.js';

export const DEEPINV_DEFAULTS = {
  lrX: 0.1,
  /** Optimisation steps before a batch is finished and banked. */
  stepsPerBatch: 200,
  /** Pixel-optimisation steps per loop iteration (between student steps). */
  inversionSteps: 10,
  alphaTv: 1e-3,
  alphaL2: 1e-4,
  alphaPs: 0.1,
  /** DeepInversion's adaptive (competition) term; 0 = plain inversion. */
  alphaAdv: 0,
  jitter: 2,
  /** Horizontal flips: off by default for digits, whose mirror images are other shapes. */
  flipProb: 0,
  tau: 4,
  lrS: 1e-3,
  studentSteps: 1,
  bankBatches: 50,
};
export type DeepinvHparams = typeof DEEPINV_DEFAULTS;

export class DeepInversion implements DistillMethod {
  readonly name = 'deepinv';
  readonly studentStepsPerIteration: number;
  readonly studentOptimizer;
  readonly hparams: DeepinvHparams;
  private readonly bank: ImageBank;
  private x!: Tensor;
  private y!: Tensor;
  private opt!: Adam;
  private stepsDone = 0;
  private batchesDone = 0;

  constructor(ctx: DistillContext, overrides: Partial<DeepinvHparams> = {}) {
    const h = { ...DEEPINV_DEFAULTS, ...overrides };
    this.hparams = h;
    const t = ctx.teacher as unknown as { blocks?: unknown; config?: { patchSize?: number } };
    if (h.alphaPs > 0 && !(t.blocks && t.config?.patchSize)) {
      // The patch-similarity prior reads patch tokens; a CNN's prior would be DeepInversion's
      // BN-statistics R_feature, which this file does not implement.
      throw new Error('deepinv: the patch-similarity prior (--alpha-ps) needs a ViT teacher (patch tokens); for a CNN teacher give --alpha-ps 0 (DeepInversion without a feature prior) or use dafl/dfad/zskt');
    }
    this.studentStepsPerIteration = h.studentSteps;
    this.studentOptimizer = { kind: 'adam' as const, lr: h.lrS };
    this.bank = new ImageBank(h.bankBatches * ctx.batchSize);
    this.newBatch(ctx);
  }

  private newBatch(ctx: DistillContext): void {
    this.x?.dispose();
    this.y?.dispose();
    this.opt?.disposeState();
    this.x = keep(randn([ctx.batchSize, ...ctx.inputShape], { requiresGrad: true }));
    this.y = keep(randint(0, ctx.numClasses, [ctx.batchSize]));
    this.opt = new Adam([this.x], { lr: this.hparams.lrX, betas: [0.5, 0.99] });
    this.opt.replicated = false; // each data-parallel rank optimises its own share of the batch
    this.stepsDone = 0;
  }

  synthesize(ctx: DistillContext): SyntheticBatch {
    const h = this.hparams;
    const logs: Record<string, number> = {};
    for (let s = 0; s < h.inversionSteps; s++) {
      const xa = randomJitterFlip(this.x, h.jitter, h.flipProb);
      const wantTokens = h.alphaPs > 0;
      const out = ctx.teacher.forward(xa, { returnTokens: wantTokens });
      const ce = crossEntropy(out.logits, this.y);
      const tv = totalVariation(this.x, 'l2');
      const l2 = l2Prior(this.x);
      let loss = ce.add(tv.mul(h.alphaTv)).add(l2.mul(h.alphaL2));
      logs['G/ce'] = ce.item();
      logs['G/tv'] = tv.item();
      if (wantTokens) {
        const o = out as unknown as { tokens: Tensor[]; numPrefix: number };
        // A 32-point grid KDE: evaluating at every pair costs B·M² memory (M = N(N−1)/2 pairs).
        const ps = patchSimilarityPrior(o.tokens, o.numPrefix, { samplePoints: 32 });
        loss = loss.add(ps.mul(h.alphaPs));
        logs['G/ps'] = ps.item();
      }
      if (h.alphaAdv > 0) {
        const js = jensenShannon(out.logits, ctx.student.forward(xa).logits);
        loss = loss.sub(js.mul(h.alphaAdv));
        logs['G/js'] = js.item();
      }
      this.opt.zeroGrad();
      loss.backward();
      this.opt.step();
      ctx.student.zeroGrad();
      this.stepsDone++;
      if (this.stepsDone >= h.stepsPerBatch) {
        this.bank.add(this.x.detach());
        this.batchesDone++;
        this.newBatch(ctx);
      }
    }
    // Until the first batch is finished the student learns from the batch in progress.
    const x = this.bank.size > 0 ? this.bank.sample(ctx.batchSize) : this.x.detach().clone();
    return { x, logs: { ...logs, 'G/banked': this.batchesDone } };
  }

  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    return studentKD(ctx, batch, { tau: this.hparams.tau });
  }

  previewBatch(ctx: DistillContext, n: number): Tensor {
    return this.bank.size > 0 ? this.bank.sample(Math.min(n, this.bank.size)) : this.x.detach().clone();
  }

  stateDict(): MethodState {
    const tensors: Record<string, Tensor> = { ...this.bank.stateDict(), 'inv.x': this.x.detach().clone(), 'inv.y': this.y.clone() };
    return { tensors, meta: { invOptim: putOptimizerState(tensors, 'inv.optim.', this.opt), stepsDone: this.stepsDone, batchesDone: this.batchesDone } };
  }

  loadStateDict(s: MethodState): void {
    this.bank.loadStateDict(s.tensors);
    const x = s.tensors['inv.x'];
    const y = s.tensors['inv.y'];
    if (!x || !y) throw new Error('deepinv state has no inv.x / inv.y');
    this.x.dispose();
    this.y.dispose();
    this.opt.disposeState();
    this.x = keep(x.detach().clone().requiresGrad_(true));
    this.y = keep(y.clone());
    this.opt = new Adam([this.x], { lr: this.hparams.lrX, betas: [0.5, 0.99] });
    this.opt.replicated = false; // each data-parallel rank optimises its own share of the batch
    this.opt.loadStateDict({ state: unprefixed('inv.optim.', s.tensors), meta: s.meta.invOptim as never });
    this.stepsDone = s.meta.stepsDone as number;
    this.batchesDone = s.meta.batchesDone as number;
  }

  dispose(): void {
    this.bank.dispose();
    this.x.dispose();
    this.y.dispose();
    this.opt.disposeState();
  }
}

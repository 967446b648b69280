// `fast` — Fast-DFKD: "Up to 100× Faster Data-free Knowledge Distillation" (Fang et al., AAAI 2022;
// reference code: Fast-Datafree's datafree/synthesis/fast_meta.py, FastMetaSynthesizer). Model
// inversion through a generator G_θ whose INITIALISATION θ is meta-learned across batches, so that a
// few synthesis steps per batch suffice (instead of DeepInversion's thousands of pixel steps).
//
// Per synthetic batch (one `synthesize` call = one batch; the first call also runs the warm-up below):
//   1. a fast copy θ' ← θ (weights and BatchNorm buffers, the code's generator.clone()), a fresh
//      learnable latent z ~ N(0, I) [B, d] and random targets y;
//   2. `gSteps` Adam steps (lr_g for θ', lr_z for z, betas 0.5/0.999, state fresh per batch) on
//        x = G_θ'(z),  x' = a random view of x (circular shift ±jitter, optional flip)
//        L_G = w_bn·R_feature(x') [BN teacher] + w_ps·R_ps(x') [ViT, optional] + w_oh·CE(T(x'), y)
//              + w_adv·L_adv + w_tv·TV(x)
//        L_adv = −(1/B) Σ_i m_i·KL(σ(T(x')_i) ‖ σ(S(x')_i)),  m_i = [argmax S(x')_i = argmax T(x')_i]
//      R_feature with Fast's BN momentum (the code's DeepInversionHook with bn_mmt = m): per teacher
//      BatchNorm l, with the batch's input statistics μ_l, σ²_l and their running averages over earlier
//      batches μ̄_l, σ̄²_l,
//        R_l = ‖σ²_BN − (1−m)·σ²_l − m·σ̄²_l‖₂ + ‖μ_BN − (1−m)·μ_l − m·μ̄_l‖₂
//      (the plain DeepInversion term before the first batch, or with m = 0), and after each batch
//      μ̄ ← m·μ̄ + (1−m)·μ(last step), the same for σ̄²: a batch only has to bring the running average
//      of the synthetic statistics to the teacher's, not match them on its own;
//   3. the meta update, first-order Reptile: θ ← θ + ε·(θ' − θ), written as Fast's code writes it —
//      the meta-gradient g = θ − θ' goes into θ's .grad and a meta optimiser (Adam, lr_meta, betas
//      0.5/0.999) steps. `fomaml` uses instead the first-order MAML meta-gradient g = Σ_t ∇_θ' L_G,t
//      (the sum of the inner steps' gradients), the code's is_maml = 1;
//   4. the lowest-L_G images among the steps' (the code's best_inputs) go into the data pool (an
//      ImageBank); the student learns KD(T, S; τ) on batches sampled from the pool (with the same
//      random shift), `studentSteps` per loop iteration.
// Warm-up (the code's `warmup` epochs): the first synthesize call first runs `warmupBatches` extra
// batches with the adversarial term off (the code's ep < ep_start) — the pool and θ get a head start
// before the student's first step.
//
// Data parallelism: θ is one model replicated on every rank — the meta optimiser keeps
// `replicated = true`, so the Reptile meta-gradients (θ − θ'_rank) are averaged across ranks before its
// step: exactly batch-averaged Reptile. The fast copy θ', z and the inner optimiser are this rank's own
// (`replicated = false`); so are the pool and the BN-momentum averages.
//
// Choices and deviations (with reasons):
// - Reptile is the default meta-gradient (the brief; the paper describes first-order meta-learning);
//   Fast's published CIFAR scripts run --is_maml 1 (FOMAML): `--fomaml` gives that. Fast's code scales
//   the Reptile gradient by 67; Adam is invariant to that scale (up to its ε), so it is not copied.
// - The meta learning rate defaults to Fast's lr_g·g_steps (lrMeta 0 = that); Fast's code uses it for
//   both meta-gradients.
// - The generator is the project's DCGAN generator (Fast's `Generator` shape: Linear → BN → ×2 → conv
//   → BN → LeakyReLU → ×2 → conv → BN → LeakyReLU → conv), with tanh and the affine into the teacher's
//   normalised space instead of sigmoid + Normalizer (the same range: (tanh(a)+1)/2 = sigmoid(2a)),
//   BatchNorm eps 1e-5 as Fast's (not DAFL's 0.8), convolutions with biases (Fast's have none);
//   base width 32 (Fast: ngf 64) — the CPU.
// - The meta generator's BatchNorm running statistics stay at their initial values, as in Fast (θ'
//   runs in train mode, with batch statistics, and only θ's parameters are meta-updated); the sample
//   grids show the newest pool images, which is what the student learns from.
// - The view is a circular shift (DeepInversion's jitter, as deepinv / cmi / nayer) instead of Fast's
//   zero-padded RandomCrop (pad 4); flips off by default (mirrored digits are other shapes).
// - Not implemented: Fast's reset_l0 (re-initialising the generator's first layer at epoch 120 +
//   warmup — in the published code the condition `n == "l1.0" or "conv_blocks.0"` is always true, so
//   it would re-initialise every layer), reset_bn (off in every published script), and its init_dataset.
// - The student uses Adam (lr 1e-3) as this project's other methods on their tiny students, not Fast's
//   SGD 0.2 with cosine annealing for CIFAR ResNets; the pool is a ring of bankBatches·B images, not
//   an unbounded on-disk pool; τ = 20 as Fast's scripts (--T 20), not tuned here.
// - Fast trains the student 400 steps (kd_steps) per 2–10-step synthesised batch; here 20
//   (`studentSteps`, measured next to the flag).
// - Cost (LeNet pair: shipped fashion-lenet5 → lenet5-half-28, batch 64, 1 thread, defaults): ≈ 265 ms
//   per loop iteration (a 2-step synthetic batch with its meta update ≈ 155 ms + 20 student steps ≈ 5 ms
//   each); the first iteration adds the warm-up, ≈ 3.2 s. Not measured on a ViT teacher.
// - The patch-similarity prior (w_ps) for ViT teachers is PSAQ-ViT's (Fast has only BN teachers); off
//   by default, as cmi / nayer. With a LeNet-5 teacher (no BatchNorm) there is no image prior: the
//   one-hot and adversarial terms (and the meta-learned init) do the work; `wTv` is there for them.
// - Fast's loss weights are its CIFAR scripts' (bn 10, oh 0.5, adv 1.33 for ResNet-34, g_steps 2,
//   lr_g 5e-3, lr_z 0.015, bn_mmt 0.9); warmupBatches 20 = its 20 warm-up epochs of one batch each.
import { hparamChecks } from '../hparams.js';
import { keep, noGrad, randint, randn, tidy, zeros, type Tensor } from '../../tensor/tensor.js';
import { crossEntropy } from '../../tensor/functional.js';
import { Adam, type Optimizer, type OptimizerMeta } from '../../nn/optim.js';
import type { BatchNorm2d } from '../../nn/layers.js';
import { DCGANGenerator } from '../../models/generators.js';
import { ImageBank } from '../bank.js';
import { randomJitterFlip } from '../augment.js';
import { putModuleState, putOptimizerState, studentKD, unprefixed } from '../common.js';
import { batchNormStatisticsLoss, totalVariation, maskedAdversarialKL } from '../losses.js';
import { batchNorms, isVit, priorKind, teacherForwardWithPrior, type PriorKind } from '../priors.js';
import type { DistillContext, DistillMethod, MethodState, StudentLoss, SyntheticBatch } from '../types.js';

export const FAST_DEFAULTS = {
  /** Weight of R_feature, DeepInversion's BN-statistics prior (BatchNorm teachers only; Fast's scripts: 10). */
  wBn: 10,
  /** Weight of PSAQ-ViT's patch-similarity prior (ViT teachers only; 0 = off, the default). */
  wPs: 0,
  /** Grid points of the patch prior's KDE (as deepinv). */
  psSamplePoints: 32,
  /** Weight of CE(T(x), y) on the random targets (Fast's scripts: 0.4–0.5). */
  wOh: 0.5,
  /** Weight of the masked adversarial term −mean[m·KL(T ‖ S)] (Fast's scripts: 1.0–1.33). */
  wAdv: 1.33,
  /** Total-variation (l2) prior on the generator's images; 0 = off (Fast has none). */
  wTv: 0,
  /** Inner (fast-weight) Adam steps per synthetic batch (Fast: 2, 5 or 10; the paper's point is that few suffice). */
  gSteps: 2,
  /** Inner Adam lr of the fast generator θ' (Fast's scripts: 5e-3 at g_steps 2, 3e-3 at 5, 2e-3 at 10). */
  lrG: 5e-3,
  /** Inner Adam lr of the latent z (Fast's scripts: 0.015 at g_steps 2, 0.01 at 5 and 10). */
  lrZ: 0.015,
  /** Meta optimiser (Adam) lr; 0 = Fast's lr_g·g_steps. */
  lrMeta: 0,
  /** First-order MAML meta-gradient Σ_t ∇_θ' L_G,t instead of Reptile's θ − θ' (Fast's scripts' --is_maml 1). */
  fomaml: false,
  /** Momentum m of the BN prior's running synthetic statistics (Fast's bn_mmt: 0.9; 0 = plain DeepInversion). */
  bnMomentum: 0.9,
  /**
   * Extra batches, adversarial term off, before the first student step (Fast: 20 warm-up epochs of one
   * batch). Costs ≈ 3.2 s once on the LeNet pair below; measured there (studentSteps 20, 20 s runs,
   * seeds 0 / 1): 39.0 / 41.0% with it, 42.6 / 40.2% without — no difference at this budget; Fast's value kept.
   */
  warmupBatches: 20,
  /** Pool the lowest-L_G images of a batch's steps (Fast's best_inputs), rather than the last step's. */
  keepBest: true,
  /** Latent size (Fast: 256). */
  latentDim: 256,
  /** Generator width (Fast: ngf 64; 32 on this CPU, as dafl / cmi / nayer). */
  baseChannels: 32,
  /** Random circular shift (±px) of the teacher's view and of the student's batches. */
  jitter: 2,
  /** Horizontal flips of the views: off by default for digits (Fast: 0.5 on CIFAR). */
  flipProb: 0,
  /** Student KD temperature (Fast's scripts: --T 20). */
  tau: 20,
  lrS: 1e-3,
  /**
   * Student steps per synthetic batch, each on a batch sampled from the pool (Fast: kd_steps 400 per
   * batch). Measured: shipped teachers/fashion-lenet5 (91.5% val) → lenet5-half-28, batch 64, these
   * defaults otherwise, 1 thread, 20 s wall-clock runs (warm-up included), seed 0, val accuracy on
   * every 2nd validation image: 5 → 32.4% (92 iterations, 184 ms each), 20 → 39.0% (65, 264 ms),
   * 50 → 41.1% (40). A synthetic batch costs ≈ 155 ms, a student step ≈ 5 ms: 20 keeps synthesis
   * and student time about even.
   */
  studentSteps: 20,
  /** Pool capacity, in batches. */
  bankBatches: 100,
};
export type FastHparams = typeof FAST_DEFAULTS;

// ---------------------------------------------------------------------------------------------
// The meta update

/** Reptile's meta-gradient g = θ − θ' for every parameter (new tensors, outside any graph). */
export function reptileGradient(meta: readonly Tensor[], fast: readonly Tensor[]): Tensor[] {
  if (meta.length !== fast.length) throw new Error(`reptileGradient: ${meta.length} meta parameters but ${fast.length} fast ones`);
  return noGrad(() =>
    meta.map((p, i) => {
      const q = fast[i]!;
      if (p.shape.length !== q.shape.length || p.shape.some((d, j) => d !== q.shape[j])) {
        throw new Error(`reptileGradient: parameter ${i} is [${p.shape.join(', ')}] in θ but [${q.shape.join(', ')}] in θ'`);
      }
      return p.detach().sub(q.detach());
    }),
  );
}

/**
 * One meta step: the given meta-gradients go into the parameters' .grad and `opt` steps (under data
 * parallelism a replicated optimiser averages them across ranks first); the gradients are cleared
 * afterwards. With SGD(lr ε) and Reptile's gradients this is θ ← θ + ε·(θ' − θ).
 */
export function applyMetaGradient(opt: Optimizer, params: readonly Tensor[], grads: readonly Tensor[]): void {
  if (params.length !== grads.length) throw new Error(`applyMetaGradient: ${params.length} parameters but ${grads.length} gradients`);
  opt.zeroGrad();
  params.forEach((p, i) => (p.grad = grads[i]!));
  opt.step();
  opt.zeroGrad();
}

/** Reptile: θ's meta-gradient θ − θ' applied by `opt` (the generator-free core of Fast's meta update). */
export function reptileStep(opt: Optimizer, meta: readonly Tensor[], fast: readonly Tensor[]): void {
  tidy(() => applyMetaGradient(opt, meta, reptileGradient(meta, fast)));
}

// ---------------------------------------------------------------------------------------------

const { int: requireInt, nonNegative: requireNonNegative, positive: requirePositive } = hparamChecks('fast');

/** One BatchNorm layer's input statistics (mean, biased variance over N, H, W). */
interface BnStats {
  mean: Tensor;
  var: Tensor;
}

export class Fast implements DistillMethod {
  readonly name = 'fast';
  readonly studentStepsPerIteration: number;
  readonly studentOptimizer;
  readonly hparams: FastHparams;
  /** θ: the meta-learned initialisation (never run forward in training). */
  readonly meta: DCGANGenerator;
  /** θ': the fast copy adapted to each batch. */
  readonly fastGen: DCGANGenerator;
  /** The data pool. */
  readonly bank: ImageBank;
  private readonly metaOpt: Adam;
  private readonly innerOpt: Adam;
  private readonly z: Tensor;
  private readonly kind: PriorKind;
  private readonly norms: BatchNorm2d[];
  /** Fast's bn_mmt running averages μ̄_l, σ̄²_l (null before the first batch). */
  private mmt: BnStats[] | null = null;
  /** The BN input statistics of the last teacher pass (for the momentum update). */
  private lastStats: (BnStats | null)[] = [];
  private batchesDone = 0;
  private warmedUp = false;

  constructor(ctx: DistillContext, overrides: Partial<FastHparams> = {}) {
    const h = { ...FAST_DEFAULTS, ...overrides };
    this.hparams = h;
    for (const k of ['wBn', 'wPs', 'wOh', 'wAdv', 'wTv', 'lrMeta'] as const) requireNonNegative(k, h[k]);
    for (const k of ['lrG', 'lrZ', 'lrS', 'tau'] as const) requirePositive(k, h[k]);
    for (const k of ['gSteps', 'latentDim', 'baseChannels', 'studentSteps', 'bankBatches'] as const) requireInt(k, h[k], 1);
    requireInt('warmupBatches', h.warmupBatches, 0);
    requireInt('jitter', h.jitter, 0);
    requireInt('psSamplePoints', h.psSamplePoints, 2);
    if (!(h.bnMomentum >= 0 && h.bnMomentum < 1)) throw new RangeError(`fast: --bn-momentum must be in [0, 1), got ${h.bnMomentum}`);
    if (!(h.flipProb >= 0 && h.flipProb <= 1)) throw new RangeError(`fast: --flip-prob must be in [0, 1], got ${h.flipProb}`);
    if (h.wPs > 0 && !isVit(ctx.teacher)) {
      throw new Error('fast: the patch-similarity prior (--w-ps) needs a ViT teacher (patch tokens); for a CNN teacher give --w-ps 0 (a BatchNorm teacher gets the BN prior, --w-bn)');
    }
    if (h.wOh + h.wAdv + h.wBn + h.wPs + h.wTv === 0) throw new Error('fast: every generator loss weight is 0 (--w-oh, --w-adv, --w-bn, --w-ps, --w-tv): nothing to synthesise with');
    const [C, H] = ctx.inputShape;
    if (H % 4 !== 0) throw new Error(`fast: the DCGAN generator needs an image side divisible by 4, the teacher takes ${H}×${H}`);
    this.studentStepsPerIteration = h.studentSteps;
    this.studentOptimizer = { kind: 'adam' as const, lr: h.lrS };
    this.kind = priorKind(ctx.teacher);
    this.norms = this.kind === 'bn' ? batchNorms(ctx.teacher) : [];

    const gcfg = { latentDim: h.latentDim, imageSize: H, channels: C, baseChannels: h.baseChannels, mean: ctx.mean, std: ctx.std, bnEps: 1e-5 };
    this.meta = new DCGANGenerator(gcfg);
    this.fastGen = new DCGANGenerator(gcfg);
    this.meta.train();
    this.fastGen.train();
    // θ is replicated across data-parallel ranks: its meta-gradients are averaged (batch-averaged Reptile).
    this.metaOpt = new Adam(this.meta.parameters(), { lr: h.lrMeta > 0 ? h.lrMeta : h.lrG * h.gSteps, betas: [0.5, 0.999] });
    this.z = keep(zeros([ctx.batchSize, h.latentDim]).requiresGrad_(true));
    this.innerOpt = new Adam([{ params: this.fastGen.parameters() }, { params: [this.z], lr: h.lrZ }], { lr: h.lrG, betas: [0.5, 0.999] });
    // θ', z and the inner Adam are this rank's own.
    this.innerOpt.replicated = false;
    this.bank = new ImageBank(h.bankBatches * ctx.batchSize);
  }

  /** The learning rate the meta optimiser uses. */
  get metaLr(): number {
    return this.metaOpt.paramGroups[0]!.lr;
  }

  // -------------------------------------------------------------------------------------------

  /** The teacher's forward on the view x' with R_feature (Fast's momentum form) as BN taps. */
  private teacherWithBnPrior(ctx: DistillContext, xa: Tensor): { logits: Tensor; prior: Tensor | null } {
    const m = this.hparams.bnMomentum;
    const terms: Tensor[] = [];
    const stats: (BnStats | null)[] = this.norms.map(() => null);
    this.norms.forEach((bn, i) => {
      bn.inputTap = (x) => {
        const mmt = m > 0 ? this.mmt?.[i] : undefined;
        if (!mmt) {
          terms.push(batchNormStatisticsLoss(x, bn.runningMean, bn.runningVar));
          stats[i] = noGrad(() => ({ mean: x.detach().mean([0, 2, 3]), var: x.detach().var([0, 2, 3], { correction: 0 }) }));
          return;
        }
        const mean = x.mean([0, 2, 3]);
        const variance = x.var([0, 2, 3], { correction: 0 });
        const dv = bn.runningVar.detach().sub(variance.mul(1 - m)).sub(mmt.var.mul(m));
        const dm = bn.runningMean.detach().sub(mean.mul(1 - m)).sub(mmt.mean.mul(m));
        terms.push(dv.square().sum().sqrt().add(dm.square().sum().sqrt()));
        stats[i] = noGrad(() => ({ mean: mean.detach(), var: variance.detach() }));
      };
    });
    try {
      const logits = ctx.teacher.forward(xa).logits;
      let prior: Tensor | null = null;
      for (const t of terms) prior = prior ? prior.add(t) : t;
      this.setLastStats(stats);
      return { logits, prior };
    } finally {
      for (const bn of this.norms) bn.inputTap = null;
    }
  }

  private setLastStats(stats: (BnStats | null)[]): void {
    for (const s of this.lastStats) {
      s?.mean.dispose();
      s?.var.dispose();
    }
    this.lastStats = stats.map((s) => (s ? { mean: keep(s.mean), var: keep(s.var) } : null));
  }

  /**
   * L_G on a batch of generator images x with targets y: the random view, the teacher's prior, the
   * one-hot CE, the masked adversarial KL (when `adversarial`) and TV. The graph reaches x (and the
   * student, whose gradients the caller discards).
   */
  generatorLoss(ctx: DistillContext, x: Tensor, y: Tensor, adversarial = true): { loss: Tensor; logs: Record<string, number> } {
    const h = this.hparams;
    const logs: Record<string, number> = {};
    const xa = h.jitter > 0 || h.flipProb > 0 ? randomJitterFlip(x, h.jitter, h.flipProb) : x;
    let logits: Tensor;
    let prior: Tensor | null = null;
    if (this.kind === 'bn') {
      ({ logits, prior } = this.teacherWithBnPrior(ctx, xa));
    } else {
      const r = teacherForwardWithPrior(ctx.teacher, xa, { kind: this.kind, norms: this.norms, psSamplePoints: h.wPs > 0 ? h.psSamplePoints : undefined });
      logits = r.out.logits;
      prior = r.prior;
    }
    const oh = crossEntropy(logits, y);
    let loss = oh.mul(h.wOh);
    logs['G/oh'] = oh.item();
    if (prior) {
      loss = loss.add(prior.mul(this.kind === 'bn' ? h.wBn : h.wPs));
      logs[this.kind === 'bn' ? 'G/bn' : 'G/ps'] = prior.item();
    }
    if (adversarial && h.wAdv > 0) {
      const s = ctx.student.forward(xa).logits;
      const adv = maskedAdversarialKL(logits, s);
      loss = loss.add(adv.mul(h.wAdv));
      logs['G/adv'] = adv.item();
    }
    if (h.wTv > 0) {
      const tv = totalVariation(x, 'l2');
      loss = loss.add(tv.mul(h.wTv));
      logs['G/tv'] = tv.item();
    }
    logs['G/total'] = loss.item();
    return { loss, logs };
  }

  /** Fast's update_mmt: μ̄ ← m·μ̄ + (1−m)·μ(last step) (the first batch's statistics start the average). */
  private updateMomentum(): void {
    const m = this.hparams.bnMomentum;
    if (this.kind !== 'bn' || m === 0 || this.lastStats.some((s) => s === null)) return;
    const stats = this.lastStats as BnStats[];
    noGrad(() => {
      if (!this.mmt) {
        this.mmt = stats.map((s) => ({ mean: keep(s.mean.clone()), var: keep(s.var.clone()) }));
        return;
      }
      this.mmt.forEach((a, i) => {
        a.mean.mul_(m).add_(stats[i]!.mean, 1 - m);
        a.var.mul_(m).add_(stats[i]!.var, 1 - m);
      });
    });
  }

  /** One synthetic batch: θ' ← θ, gSteps inner steps, the meta update; returns a copy of the pooled images. */
  private synthesizeBatch(ctx: DistillContext, adversarial: boolean, logs: Record<string, number>): Tensor {
    const h = this.hparams;
    const B = ctx.batchSize;
    this.fastGen.loadStateDict(this.meta.stateDict());
    noGrad(() => tidy(() => this.z.copy_(randn(this.z.shape))));
    const y = keep(randint(0, ctx.numClasses, [B]));
    this.innerOpt.disposeState();
    const fastParams = this.fastGen.parameters();
    let acc: Tensor[] | null = null; // FOMAML's Σ_t ∇θ' L_G,t
    let best: { x: Tensor; cost: number } | null = null;
    try {
      for (let t = 0; t < h.gSteps; t++) {
        tidy(() => {
          const x = this.fastGen.forward(this.z);
          const r = this.generatorLoss(ctx, x, y, adversarial);
          const cost = r.logs['G/total']!;
          if (t === 0) logs['G/first'] = cost;
          Object.assign(logs, r.logs);
          if (!best || !h.keepBest || cost < best.cost) {
            best?.x.dispose();
            best = { x: keep(noGrad(() => x.detach().clone())), cost };
          }
          this.innerOpt.zeroGrad();
          r.loss.backward();
          if (h.fomaml) {
            noGrad(() => {
              const grads = fastParams.map((p) => p.grad ?? zeros(p.shape, { dtype: p.dtype, device: p.device }));
              if (!acc) acc = grads.map((g) => keep(g.clone()));
              else acc.forEach((a, i) => a.add_(grads[i]!));
            });
          }
          this.innerOpt.step();
          ctx.student.zeroGrad();
        });
      }
      this.updateMomentum();
      tidy(() => {
        const metaParams = this.meta.parameters();
        const grads = acc ?? reptileGradient(metaParams, fastParams);
        logs['G/meta_norm'] = noGrad(() => grads.reduce((s, g) => s + g.square().sum().item(), 0)) ** 0.5;
        applyMetaGradient(this.metaOpt, metaParams, grads);
      });
    } finally {
      y.dispose();
      if (acc) for (const a of acc as Tensor[]) a.dispose();
      this.innerOpt.zeroGrad();
    }
    const kept = (best as { x: Tensor; cost: number } | null)!.x;
    this.bank.add(kept);
    this.batchesDone++;
    // a tensor of the caller's scope (the kept candidate is freed here)
    const x = noGrad(() => kept.clone());
    kept.dispose();
    return x;
  }

  synthesize(ctx: DistillContext): SyntheticBatch {
    const logs: Record<string, number> = {};
    // Fast synthesises with the student in eval mode (its BatchNorm statistics untouched by synthesis).
    const was = ctx.student.training;
    ctx.student.eval();
    try {
      if (!this.warmedUp) {
        for (let b = 0; b < this.hparams.warmupBatches; b++) this.synthesizeBatch(ctx, false, {}).dispose();
        this.warmedUp = true;
      }
      const x = this.synthesizeBatch(ctx, true, logs);
      return { x, logs: { ...logs, 'G/banked': this.batchesDone } };
    } finally {
      ctx.student.train(was);
    }
  }

  /** A batch sampled from the pool, under the pool's augmentation (the random shift). */
  studentBatch(ctx: DistillContext): SyntheticBatch {
    const h = this.hparams;
    const x = this.bank.sample(ctx.batchSize);
    return { x: h.jitter > 0 || h.flipProb > 0 ? randomJitterFlip(x, h.jitter, h.flipProb) : x, logs: {} };
  }

  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    return studentKD(ctx, batch, { tau: this.hparams.tau });
  }

  /** The newest pool images (no random draws); before any batch, θ's output in eval mode. */
  previewBatch(_ctx: DistillContext, n: number): Tensor {
    if (this.bank.size === 0) {
      this.meta.eval();
      try {
        return noGrad(() => this.meta.forward(this.meta.latent(n)));
      } finally {
        this.meta.train();
      }
    }
    return this.bank.newest(n);
  }

  stateDict(): MethodState {
    const tensors: Record<string, Tensor> = { ...this.bank.stateDict('bank') };
    putModuleState(tensors, 'fast.meta.', this.meta);
    noGrad(() => {
      this.mmt?.forEach((s, i) => {
        tensors[`fast.mmt.${i}.mean`] = s.mean.clone();
        tensors[`fast.mmt.${i}.var`] = s.var.clone();
      });
    });
    return { tensors, meta: { metaOptim: putOptimizerState(tensors, 'fast.metaOptim.', this.metaOpt), batchesDone: this.batchesDone, warmedUp: this.warmedUp, mmtLayers: this.mmt?.length ?? 0 } };
  }

  loadStateDict(s: MethodState): void {
    const t = s.tensors;
    const optMeta = s.meta.metaOptim as OptimizerMeta | undefined;
    if (!optMeta) throw new Error('fast state has no metaOptim metadata');
    this.meta.loadStateDict(unprefixed('fast.meta.', t));
    this.metaOpt.loadStateDict({ state: unprefixed('fast.metaOptim.', t), meta: optMeta });
    this.bank.loadStateDict(t, 'bank');
    this.disposeMomentum();
    const layers = (s.meta.mmtLayers as number | undefined) ?? 0;
    if (layers > 0) {
      if (layers !== this.norms.length) throw new Error(`fast state has BN-momentum statistics for ${layers} BatchNorm layers, the teacher has ${this.norms.length}`);
      this.mmt = Array.from({ length: layers }, (_, i) => {
        const mean = t[`fast.mmt.${i}.mean`];
        const variance = t[`fast.mmt.${i}.var`];
        if (!mean || !variance) throw new Error(`fast state has no fast.mmt.${i}.mean / .var`);
        return noGrad(() => ({ mean: keep(mean.clone()), var: keep(variance.clone()) }));
      });
    }
    this.batchesDone = s.meta.batchesDone as number;
    this.warmedUp = s.meta.warmedUp as boolean;
  }

  private disposeMomentum(): void {
    for (const a of this.mmt ?? []) {
      a.mean.dispose();
      a.var.dispose();
    }
    this.mmt = null;
  }

  dispose(): void {
    this.meta.dispose();
    this.fastGen.dispose();
    this.metaOpt.disposeState();
    this.innerOpt.disposeState();
    this.z.dispose();
    this.bank.dispose();
    this.disposeMomentum();
    this.setLastStats([]);
  }
}

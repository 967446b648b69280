// `cmi` — Contrastive Model Inversion (Fang et al., IJCAI 2021; reference code: Fast-Datafree's
// datafree/synthesis/contrastive.py, CMISynthesizer). Model inversion through a generator that is
// re-initialised for every synthetic batch, with a contrastive term that pushes every new sample away
// from the other samples of its batch and from the samples of earlier batches (a feature memory bank),
// so that the data pool does not fill with near-copies.
//
// Per synthetic batch: a learnable latent z [B, d] ~ N(0, I), random target labels y, and a freshly
// initialised DCGAN-style generator G (CMI's reset_model: conv/linear weights N(0, 0.02), biases 0,
// BN weights N(1, 0.02)). Adam over (θ_G, z) (lr_g, betas 0.5/0.999) for `stepsPerBatch` steps on
//   x = G(z),  x_g = global view (random shift ±jitter),  x_l = local view (random resized crop)
//   L_G = w_bn·R_feature(x_g) [BN teacher] + w_ps·R_ps(x_g) [ViT, optional] + w_oh·CE(T(x_g), y)
//         + w_adv·L_adv + w_cr·L_cr + w_tv·TV(x)
//   L_adv = −(1/B) Σ_i m_i · KL(σ(T(x_g)_i) ‖ σ(S(x_g)_i)),  m_i = [argmax S(x_g)_i = argmax T(x_g)_i]
//   L_cr  = InfoNCE(h(f_T(x_l)), sg[h(f_T(x_g))]; memory)                      (contrastiveLoss below)
// with h a projection head (Linear-ReLU-Linear, then L2 normalisation) trained jointly by its own Adam
// (lr_g, as CMI's optimizer_head). As in CMI's code (its "naive implementation"): the anchors are the
// projected LOCAL views, the keys the projected GLOBAL views, detached; the row of sample i has its own
// global view as the positive and, as negatives, the other samples' global views and the global
// features of `negatives` samples of earlier batches drawn from the memory bank; the memory's local
// features are anchors too (rows that only train the head), and the two halves are averaged
// separately and summed — CMI's "loss_cr[:B].mean() + loss_cr[B:].mean()".
// After `stepsPerBatch` steps the batch is finished: the lowest-loss images of its steps (CMI's
// best_inputs) go into the data pool (an ImageBank), their [local | global] teacher features into the
// memory bank (an ImageBank of feature vectors, capacity memoryBatches·B, oldest overwritten first),
// and a new batch begins (new z, new y, reset generator, fresh Adam state).
// Student: KD(T, S; τ) on batches sampled from the pool (until the first batch is finished, the batch
// in progress), with the pool's augmentation (the global view's random shift), `studentSteps` per
// iteration; `synthesisStepsPerIteration` synthesis steps per loop iteration (as deepinv), so that the
// student trains while a batch is being synthesised.
//
// Choices and deviations (with reasons):
// - f_T is the teacher's penultimate `feature` (the ViT's normed class token, LeNet-5's 120-d conv3
//   output, the ResNet's pooled 512-d vector), not CMI's concatenation of every BatchNorm layer's
//   per-channel input means: LeNet-5 and the ViTs have no BatchNorm, and on ResNet-34 the concatenation
//   is ~8.5k-d, which with CMI's head (hidden width = input width) is a 72M-parameter layer — too heavy
//   for this CPU. One definition for every teacher family.
// - The global view is a circular shift (DeepInversion's jitter, as deepinv) instead of CMI's
//   zero-padded random crop (pad 4 on 32 px); flips are off by default (mirrored digits are other
//   shapes). The local view is CMI's RandomResizedCrop (area 0.25–1, aspect 3/4–4/3), written here as
//   an affine grid sample (differentiable); a crop that would not fit is clamped to the image instead
//   of torchvision's ten retries.
// - Negatives from the memory are drawn without replacement, `negatives` of them per step (CMI: 4096
//   of a 40960 bank); here the bank holds memoryBatches·B features and all of them are used while it
//   holds fewer than `negatives`.
// - The student uses Adam (lr 1e-3) as this project's other methods on the tiny students, not CMI's
//   SGD 0.1 for CIFAR ResNets; the data pool is a ring of poolBatches·B images, not CMI's unbounded
//   on-disk pool.
// - Fewer steps per batch (stepsPerBatch 40, CMI's CIFAR scripts 200–500), a generator of base width
//   32 (CMI's 64): the CPU. Measured cost per synthesis step (batch 64, 1 thread, shipped teachers):
//   mnist-vit 293 ms (188 ms without the contrastive term, 367 ms with w_ps 0.1), mnist-lenet5 92 ms;
//   a student step 80 ms (vit-student-28) / 5 ms (lenet5-half-28).
// - `resetGenerator false` (an ablation, not CMI) keeps one generator across batches: better over
//   short budgets on LeNet-5 (the measurement is next to the flag).
// - The patch-similarity prior (w_ps) for ViT teachers is PSAQ-ViT's, not CMI's (which has only BN
//   teachers): off by default, so the loss is CMI's; it costs +25% per step (above) and its effect on
//   accuracy was not measured (a ViT run long enough to tell is minutes on this shared CPU). The TV
//   prior is off by default (CMI has none). Without BatchNorm (LeNet-5, ViT) the oh/adv/cr terms do
//   the work.
// - The student's KD temperature is CMI's scripts' T = 20 (not tuned here).
// - The first batch is drawn at the first synthesis step, not in the constructor, so that
//   data-parallel ranks (constructed from one seed, reseeded per rank each iteration) start from
//   different batches.
import { hparamChecks } from '../hparams.js';
import { cat, keep, noGrad, randint, randn, randperm, tidy, zeros, type Tensor } from '../../tensor/tensor.js';
import { crossEntropy } from '../../tensor/functional.js';
import { Adam, type OptimizerMeta } from '../../nn/optim.js';
import { BatchNorm2d, Conv2d, ConvTranspose2d, Linear, ReLU } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { normal_, zeros_ } from '../../nn/init.js';
import { DCGANGenerator } from '../../models/generators.js';
import { ImageBank } from '../bank.js';
import { randomJitterFlip } from '../augment.js';
import { putModuleState, putOptimizerState, stateTensor, studentKD, unprefixed } from '../common.js';
import { maskedAdversarialKL, totalVariation } from '../losses.js';
import { batchNorms, isVit, priorKind, teacherForwardWithPrior, type PriorKind } from '../priors.js';
import type { DistillContext, DistillMethod, MethodState, StudentLoss, SyntheticBatch } from '../types.js';

export const CMI_DEFAULTS = {
  /** Weight of DeepInversion's BN-statistics prior R_feature (used where the teacher has BatchNorm; CMI: 1). */
  wBn: 1,
  /** Weight of PSAQ-ViT's patch-similarity prior (ViT teachers only; 0 = off, the default). */
  wPs: 0,
  /** Grid points of the patch prior's KDE (as deepinv). */
  psSamplePoints: 32,
  /** Weight of CE(T(x), y) on the random targets (CMI's CIFAR setting: 1). */
  wOh: 1,
  /** Weight of the masked adversarial term −mean[m·KL(T ‖ S)] (CMI's CIFAR setting: 0.5). */
  wAdv: 0.5,
  /** Weight of the contrastive term (CMI: 0.8). */
  wCr: 0.8,
  /** InfoNCE temperature (CMI: 0.1 – 0.2). */
  tauCr: 0.1,
  /** Total-variation (l2) prior on the generator's images; 0 = off (CMI has none). */
  wTv: 0,
  /** Adam lr of the generator, the latent z and the projection head (CMI: 1e-3). */
  lrG: 1e-3,
  /** Latent size (CMI: 256). */
  latentDim: 256,
  /** Generator width (CMI: 64; 32 on this CPU, as dafl's default). */
  baseChannels: 32,
  /** Synthesis steps before a batch is finished and pooled (CMI's CIFAR scripts: 200–500; the CPU). */
  stepsPerBatch: 40,
  /**
   * Synthesis steps per loop iteration (between student steps). CMI's CIFAR scripts run kd_steps 400
   * student steps per 200-step synthesised batch: 2 student steps per synthesis step, as here.
   */
  synthesisStepsPerIteration: 1,
  /**
   * Re-initialise the generator for every batch (CMI's reset_model); false keeps one generator across
   * batches (new z, y and Adam state per batch still). Measured (shipped mnist-lenet5 → lenet5-half-28,
   * batch 64, defaults, 200 iterations = 5 finished batches, 1 thread, ~20 s each, val accuracy at
   * iterations 100 / 200): reset 36.4 / 57.3% (seed 1), 30.4 / 45.1% (seed 2); persistent 51.4 / 74.0%,
   * 43.1 / 72.3%. Over this short budget the persistent generator is clearly better (a reset one starts
   * every batch from near-constant images and has only 40 steps); the default stays CMI's, since its
   * point is diversity over long runs, which 200 iterations cannot show.
   */
  resetGenerator: true,
  /** Keep the lowest-loss images of a batch's steps (CMI's best_inputs) rather than the last ones. */
  keepBest: true,
  /** Output width of the projection head (CMI: 128). */
  headDim: 128,
  /** Hidden width of the projection head; 0 = the feature width (CMI's MLPHead default). */
  headHidden: 0,
  /** Memory-bank capacity, in batches (the features of the last memoryBatches finished batches; CMI: 40960 features). */
  memoryBatches: 64,
  /**
   * Memory features used as negatives per step (CMI's n_neg: 4096). Cheap: measured on the shipped
   * mnist-vit teacher (batch 64, 1 thread, memory of 2048), 285 / 292 / 319 ms per synthesis step
   * with 256 / 1024 / all 2048 negatives.
   */
  negatives: 4096,
  /** Data-pool capacity, in batches. */
  poolBatches: 100,
  /** Global view (and student batches): random circular shift, ±px. */
  jitter: 2,
  /** Horizontal flips of the views: off by default for digits (CMI: 0.5 on CIFAR). */
  flipProb: 0,
  /** Local view: the random resized crop keeps [localMinScale, 1] of the image's area (CMI: 0.25). */
  localMinScale: 0.25,
  /** Student KD temperature (CMI's published scripts: T = 20). */
  tau: 20,
  lrS: 1e-3,
  /** Student steps per loop iteration (see synthesisStepsPerIteration). */
  studentSteps: 2,
};
export type CmiHparams = typeof CMI_DEFAULTS;

// The contrastive loss, the projection head and the local view live in ../contrastive.ts (tgan's --w-cr uses them too).
export { contrastiveLoss, l2Normalize, ProjectionHead, randomResizedCrop } from '../contrastive.js';
import { contrastiveLoss, ProjectionHead, randomResizedCrop } from '../contrastive.js';

/** CMI's reset_model: conv / linear weights N(0, 0.02) and biases 0, BatchNorm weights N(1, 0.02) and biases 0. */
export function resetGenerator(g: Module): void {
  for (const [, m] of g.namedModules()) {
    if (m instanceof Linear || m instanceof Conv2d || m instanceof ConvTranspose2d) {
      normal_(m.weight, 0, 0.02);
      if (m.bias) zeros_(m.bias);
    } else if (m instanceof BatchNorm2d) {
      if (m.weight) normal_(m.weight, 1, 0.02);
      if (m.bias) zeros_(m.bias);
    }
  }
}

// ---------------------------------------------------------------------------------------------

const { int: requireInt, nonNegative: requireNonNegative, positive: requirePositive } = hparamChecks('cmi');

/** The images and features that would be pooled if the batch in progress ended now. */
interface Candidate {
  x: Tensor;
  /** [B, 2F]: [local | global] teacher features (null when the contrastive term is off). */
  feat: Tensor | null;
  cost: number;
}

export class Cmi implements DistillMethod {
  readonly name = 'cmi';
  readonly studentStepsPerIteration: number;
  readonly studentOptimizer;
  readonly hparams: CmiHparams;
  readonly generator: DCGANGenerator;
  readonly head: ProjectionHead | null;
  /** The data pool (finished batches' images). */
  readonly pool: ImageBank;
  /** The memory bank of [local | global] teacher features of finished batches; null when w_cr = 0. */
  readonly memory: ImageBank | null;
  readonly featureDim: number;
  private readonly kind: PriorKind;
  private readonly norms: BatchNorm2d[];
  private readonly z: Tensor;
  private y!: Tensor;
  private readonly opt: Adam;
  private readonly headOpt: Adam | null;
  private candidate: Candidate | null = null;
  private stepsDone = 0;
  /**
   * Whether the first batch was drawn. It is drawn at the first synthesis step, not in the
   * constructor: under data parallelism every rank constructs the method from the same seed, and the
   * loop reseeds each rank differently per iteration — so the ranks' first batches differ too.
   */
  private started = false;
  private batchesDone = 0;

  constructor(ctx: DistillContext, overrides: Partial<CmiHparams> = {}) {
    const h = { ...CMI_DEFAULTS, ...overrides };
    this.hparams = h;
    for (const k of ['wBn', 'wPs', 'wOh', 'wAdv', 'wCr', 'wTv'] as const) requireNonNegative(k, h[k]);
    for (const k of ['tauCr', 'lrG', 'lrS', 'tau'] as const) requirePositive(k, h[k]);
    for (const k of ['latentDim', 'baseChannels', 'stepsPerBatch', 'synthesisStepsPerIteration', 'studentSteps', 'headDim', 'memoryBatches', 'negatives', 'poolBatches', 'psSamplePoints'] as const) requireInt(k, h[k], 1);
    requireInt('headHidden', h.headHidden, 0);
    requireInt('jitter', h.jitter, 0);
    if (!(h.flipProb >= 0 && h.flipProb <= 1)) throw new RangeError(`cmi: --flip-prob must be in [0, 1], got ${h.flipProb}`);
    if (!(h.localMinScale > 0 && h.localMinScale <= 1)) throw new RangeError(`cmi: --local-min-scale must be in (0, 1], got ${h.localMinScale}`);
    if (h.wPs > 0 && !isVit(ctx.teacher)) {
      throw new Error('cmi: the patch-similarity prior (--w-ps) needs a ViT teacher (patch tokens); for a CNN teacher give --w-ps 0 (a BatchNorm teacher gets the BN prior, --w-bn)');
    }
    const [C, H] = ctx.inputShape;
    if (H % 4 !== 0) throw new Error(`cmi: the DCGAN generator needs an image side divisible by 4, the teacher takes ${H}×${H}`);
    this.studentStepsPerIteration = h.studentSteps;
    this.studentOptimizer = { kind: 'adam' as const, lr: h.lrS };
    this.kind = priorKind(ctx.teacher);
    this.norms = batchNorms(ctx.teacher);
    this.featureDim = Cmi.teacherFeatureDim(ctx);

    // CMI's Fast-Datafree generator: BatchNorm eps 1e-5 (PyTorch's default), not DAFL's 0.8.
    this.generator = new DCGANGenerator({ latentDim: h.latentDim, imageSize: H, channels: C, baseChannels: h.baseChannels, mean: ctx.mean, std: ctx.std, bnEps: 1e-5 });
    this.generator.train();
    this.z = keep(randn([ctx.batchSize, h.latentDim]).requiresGrad_(true));
    this.opt = new Adam([...this.generator.parameters(), this.z], { lr: h.lrG, betas: [0.5, 0.999] });
    // The generator (reset per batch) and z are this rank's own under data parallelism.
    this.opt.replicated = false;
    if (h.wCr > 0) {
      this.head = new ProjectionHead(this.featureDim, h.headDim, h.headHidden || this.featureDim);
      this.headOpt = new Adam(this.head.parameters(), { lr: h.lrG }); // CMI's optimizer_head (default betas); shared across ranks
      this.memory = new ImageBank(h.memoryBatches * ctx.batchSize);
    } else {
      this.head = null;
      this.headOpt = null;
      this.memory = null;
    }
    this.pool = new ImageBank(h.poolBatches * ctx.batchSize);
    this.y = keep(zeros([ctx.batchSize], { dtype: 'int64' })); // drawn with the first batch
  }

  /** Width of the teacher's penultimate feature, from one image, in eval mode (no BN statistics moved). */
  private static teacherFeatureDim(ctx: DistillContext): number {
    const was = ctx.teacher.training;
    ctx.teacher.eval();
    try {
      return noGrad(() => tidy(() => ctx.teacher.forward(zeros([1, ...ctx.inputShape])).feature.size(1)));
    } finally {
      ctx.teacher.train(was);
    }
  }

  /** New latents and targets, a re-initialised generator and fresh Adam state (CMI's reset_model per batch). */
  private newBatch(ctx: DistillContext): void {
    if (this.hparams.resetGenerator || this.batchesDone === 0) resetGenerator(this.generator);
    noGrad(() => tidy(() => this.z.copy_(randn(this.z.shape))));
    this.y?.dispose();
    this.y = keep(randint(0, ctx.numClasses, [ctx.batchSize]));
    this.opt.disposeState();
    this.dropCandidate();
    this.stepsDone = 0;
    this.started = true;
  }

  private dropCandidate(): void {
    this.candidate?.x.dispose();
    this.candidate?.feat?.dispose();
    this.candidate = null;
  }

  /** The memory's features as negatives for this step: all of them, or `negatives` drawn without replacement. */
  private memoryNegatives(): Tensor | null {
    const mem = this.memory;
    if (!mem || mem.size === 0) return null;
    return noGrad(() =>
      tidy(() => {
        const all = mem.newest();
        if (mem.size <= this.hparams.negatives) return all;
        return all.indexSelect(0, randperm(mem.size, { device: all.device }).narrow(0, 0, this.hparams.negatives));
      }),
    );
  }

  /** One synthesis step: the generator, z and the head move on L_G. */
  private step(ctx: DistillContext, logs: Record<string, number>): void {
    const h = this.hparams;
    const B = ctx.batchSize;
    tidy(() => {
      const x = this.generator.forward(this.z);
      const xg = h.jitter > 0 || h.flipProb > 0 ? randomJitterFlip(x, h.jitter, h.flipProb) : x;
      const { out, prior } = teacherForwardWithPrior(ctx.teacher, xg, { kind: this.kind, norms: this.norms, psSamplePoints: h.wPs > 0 ? h.psSamplePoints : undefined });
      const oh = crossEntropy(out.logits, this.y);
      let loss = oh.mul(h.wOh);
      logs['G/oh'] = oh.item();
      if (prior) {
        const w = this.kind === 'bn' ? h.wBn : h.wPs;
        loss = loss.add(prior.mul(w));
        logs[this.kind === 'bn' ? 'G/bn' : 'G/ps'] = prior.item();
      }
      if (h.wAdv > 0) {
        const s = ctx.student.forward(xg).logits;
        const adv = maskedAdversarialKL(out.logits, s);
        loss = loss.add(adv.mul(h.wAdv));
        logs['G/adv'] = adv.item();
      }
      if (h.wTv > 0) {
        const tv = totalVariation(x, 'l2');
        loss = loss.add(tv.mul(h.wTv));
        logs['G/tv'] = tv.item();
      }
      let feat: Tensor | null = null;
      if (this.head) {
        const xl = randomResizedCrop(x, { minScale: h.localMinScale, flipProb: h.flipProb });
        const fL = ctx.teacher.forward(xl).feature;
        const fG = out.feature;
        const mem = this.memoryNegatives();
        const F = this.featureDim;
        const pL = this.head.forward(mem ? cat([fL, mem.narrow(1, 0, F)], 0) : fL);
        const pG = this.head.forward(mem ? cat([fG, mem.narrow(1, F, F)], 0) : fG).detach();
        let cr = contrastiveLoss(pL.narrow(0, 0, B), pG.narrow(0, 0, B), mem ? pG.narrow(0, B, mem.size(0)) : null, h.tauCr);
        if (mem) {
          // the memory's rows (CMI's cached local features as anchors): they train the head only
          const M = mem.size(0);
          cr = cr.add(contrastiveLoss(pL.narrow(0, B, M), pG.narrow(0, B, M), pG.narrow(0, 0, B), h.tauCr));
        }
        loss = loss.add(cr.mul(h.wCr));
        logs['G/cr'] = cr.item();
        feat = noGrad(() => cat([fL.detach(), fG.detach()], 1));
      }
      const cost = loss.item();
      logs['G/total'] = cost;
      if (!this.candidate || !h.keepBest || cost < this.candidate.cost) {
        this.dropCandidate();
        this.candidate = { x: keep(noGrad(() => x.detach().clone())), feat: feat ? keep(feat) : null, cost };
      }
      this.opt.zeroGrad();
      this.headOpt?.zeroGrad();
      loss.backward();
      this.opt.step();
      this.headOpt?.step();
      ctx.student.zeroGrad();
    });
    this.stepsDone++;
    if (this.stepsDone >= h.stepsPerBatch) this.finishBatch(ctx);
  }

  /** The batch's images into the pool, their features into the memory, and a new batch. */
  private finishBatch(ctx: DistillContext): void {
    const c = this.candidate!;
    this.pool.add(c.x);
    if (this.memory && c.feat) this.memory.add(c.feat);
    this.batchesDone++;
    this.newBatch(ctx);
  }

  synthesize(ctx: DistillContext): SyntheticBatch {
    const logs: Record<string, number> = {};
    // CMI synthesises with the student in eval mode (its BatchNorm statistics untouched by synthetic batches).
    const was = ctx.student.training;
    ctx.student.eval();
    try {
      if (!this.started) this.newBatch(ctx);
      for (let s = 0; s < this.hparams.synthesisStepsPerIteration; s++) this.step(ctx, logs);
    } finally {
      ctx.student.train(was);
    }
    return { x: this.sampleBatch(ctx), logs: { ...logs, 'G/banked': this.batchesDone, 'G/memory': this.memory?.size ?? 0 } };
  }

  /** B images from the pool, or the batch in progress until the first batch is finished. */
  private sampleBatch(ctx: DistillContext): Tensor {
    return this.pool.size > 0 ? this.pool.sample(ctx.batchSize) : noGrad(() => this.candidate!.x.clone());
  }

  studentBatch(ctx: DistillContext, fresh: SyntheticBatch, k: number): SyntheticBatch {
    const h = this.hparams;
    const x = k === 0 ? fresh.x : this.sampleBatch(ctx);
    // the pool's transform (CMI: the training augmentation of the data pool)
    return { x: h.jitter > 0 || h.flipProb > 0 ? randomJitterFlip(x, h.jitter, h.flipProb) : x, logs: {} };
  }

  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    return studentKD(ctx, batch, { tau: this.hparams.tau });
  }

  /** The newest pool images (no random draws), or the batch in progress. */
  previewBatch(_ctx: DistillContext, n: number): Tensor {
    if (this.pool.size === 0) {
      if (this.candidate) return noGrad(() => this.candidate!.x.clone());
      // nothing synthesised yet: the generator's current output, in eval mode (its BN statistics untouched)
      this.generator.eval();
      try {
        return noGrad(() => this.generator.forward(this.z).narrow(0, 0, Math.min(n, this.z.size(0))));
      } finally {
        this.generator.train();
      }
    }
    return this.pool.newest(n);
  }

  /** The memory's features oldest first [size, 2F] ([local | global]), a copy; null when empty or off. */
  memoryFeatures(): Tensor | null {
    if (!this.memory || this.memory.size === 0) return null;
    return this.memory.newest();
  }

  stateDict(): MethodState {
    const tensors: Record<string, Tensor> = { ...this.pool.stateDict('pool') };
    const meta: Record<string, unknown> = { started: this.started, stepsDone: this.stepsDone, batchesDone: this.batchesDone };
    putModuleState(tensors, 'cmi.gen.', this.generator);
    if (this.head) putModuleState(tensors, 'cmi.head.', this.head);
    noGrad(() => {
      tensors['cmi.z'] = this.z.detach().clone();
      tensors['cmi.y'] = this.y.clone();
      if (this.candidate) {
        tensors['cmi.cand.x'] = this.candidate.x.clone();
        if (this.candidate.feat) tensors['cmi.cand.feat'] = this.candidate.feat.clone();
      }
    });
    if (this.memory) Object.assign(tensors, this.memory.stateDict('memory'));
    meta.optim = putOptimizerState(tensors, 'cmi.optim.', this.opt);
    if (this.headOpt) meta.headOptim = putOptimizerState(tensors, 'cmi.headOptim.', this.headOpt);
    // a JSON number round-trips a double exactly
    meta.candidateCost = this.candidate ? this.candidate.cost : null;
    return { tensors, meta };
  }

  loadStateDict(s: MethodState): void {
    const t = s.tensors;
    const need = (k: string): Tensor => stateTensor(t, k, 'cmi');
    const z = need('cmi.z');
    const y = need('cmi.y');
    if (z.size(0) !== this.z.size(0) || z.size(1) !== this.z.size(1)) throw new Error(`cmi state: latents [${z.shape.join(', ')}] but this run has [${this.z.shape.join(', ')}] (batch size or --latent-dim changed)`);
    this.generator.loadStateDict(unprefixed('cmi.gen.', t));
    noGrad(() => this.z.copy_(z));
    this.y.dispose();
    this.y = keep(noGrad(() => y.clone()));
    this.opt.loadStateDict({ state: unprefixed('cmi.optim.', t), meta: s.meta.optim as OptimizerMeta });
    if (this.head && this.headOpt) {
      this.head.loadStateDict(unprefixed('cmi.head.', t));
      this.headOpt.loadStateDict({ state: unprefixed('cmi.headOptim.', t), meta: s.meta.headOptim as OptimizerMeta });
      this.memory!.loadStateDict(t, 'memory');
    }
    this.pool.loadStateDict(t, 'pool');
    this.dropCandidate();
    const cx = t['cmi.cand.x'];
    if (cx) {
      const cf = t['cmi.cand.feat'];
      this.candidate = {
        x: keep(noGrad(() => cx.clone())),
        feat: cf ? keep(noGrad(() => cf.clone())) : null,
        cost: s.meta.candidateCost as number,
      };
    }
    this.started = s.meta.started !== false;
    this.stepsDone = s.meta.stepsDone as number;
    this.batchesDone = s.meta.batchesDone as number;
  }

  dispose(): void {
    this.generator.dispose();
    this.head?.dispose();
    this.opt.disposeState();
    this.headOpt?.disposeState();
    this.z.dispose();
    this.y.dispose();
    this.dropCandidate();
    this.pool.dispose();
    this.memory?.dispose();
  }
}

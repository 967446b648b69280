// `nayer` — NAYER: Noisy Layer Data Generation for Efficient and Effective Data-free Knowledge
// Distillation (Tran et al., CVPR 2024; reference code github.com/tmtuan1307/NAYER,
// datafree/synthesis/nayer.py and datafree/models/generator.py, NLGenerator).
//
// The generator's input is not random noise but a CONSTANT embedding e_y of the target class; the
// randomness lives in a "noisy layer" that is re-initialised at random for every synthetic batch,
// while the generator itself persists and keeps learning from batch to batch (so each new batch needs
// only a few steps: the "efficient" of the title). Per batch: targets y (balanced: every class once
// per C samples, the rest random — the code's generate_ys), a fresh noisy layer NL, and
//   x = G(NL(BN(e_y)))     NL: K = ⌈B / C⌉ Linear layers D → d, weights N(0, σ_nl²), biases 0;
//                          samples [kC, (k+1)C) go through layer k (NLGenerator's `le1` list, nl = C),
//                          so the C·K samples of one class in a batch differ only by their noisy layer
//   L_G = w_bn·R_feature(x') [BN teacher] + w_ps·R_ps(x') [ViT, optional] + w_oh·CE(T(x'), y) + w_adv·L_adv
//   L_adv = −(1/B) Σ_i m_i · KL(σ(T(x')_i) ‖ σ(S(x')_i)),  m_i = [argmax S(x')_i = argmax T(x')_i]
// with x' a random view of x (a circular shift, optionally a flip). Adam (lr_g, betas 0.5/0.999) moves
// the generator and the noisy layer for `stepsPerBatch` steps; its state is reset per batch, as the
// code builds a new optimiser for every batch. The adversarial term is off for the first
// `warmupBatches` batches (the code's `ep > ep_start`). The lowest-loss images of the batch's steps
// (the code's best_inputs) go into the data pool (an ImageBank); the student learns
//   KD(T, S; τ) on batches sampled from the pool, `studentSteps` per loop iteration,
// and `synthesisStepsPerIteration` generator steps run per loop iteration (as cmi), so the student
// trains while a batch is being synthesised.
//
// Data parallelism: the generator (and the BatchNorm1d on the embeddings) is one model replicated on
// every rank — its optimiser keeps `replicated = true`, its gradients are averaged. The noisy layer is
// this rank's own (each rank draws its own at every batch): its optimiser has `replicated = false`.
//
// What replaces the text encoder (nothing can be downloaded here; NAYER embeds "a photo of a {class}"
// with a CLIP / BERT text encoder), chosen by `classifierEmbedding`:
// - true (default): the rows of the teacher's classification head W ∈ R^{C×F} (ViT `head`, LeNet-5
//   `fc2`, CIFAR ResNet `linear`; otherwise the last Linear with C outputs), each normalised to unit
//   L2 norm: a data-free class embedding in the teacher's own feature space — the direction a feature
//   must point to for the teacher to say class c, so the embeddings of similar classes are similar,
//   which is what the text embedding gives NAYER.
// - false: fixed Gaussian embeddings N(0, I) [C, D] (D = `embeddingDim`, or F when 0), drawn once
//   from the run's seed at construction — the "one-hot-like" baseline, no class similarity at all.
// Either is stored in the method state, so a resumed run uses exactly the same embeddings.
//
// Other choices and deviations (with reasons):
// - The generator body is the project's DCGAN generator (DAFL's / NLGenerator's shape: Linear → BN →
//   ×2 → conv → BN → LeakyReLU → ×2 → conv → BN → LeakyReLU → conv), with tanh and the affine into the
//   teacher's normalised space instead of the code's sigmoid + Normalizer (the same range), BatchNorm
//   eps 1e-5 as the code (not DAFL's 0.8), convolutions with biases; base width 32 (code: ngf 64) and
//   noisy-layer width d = latentDim 256 (code: le_emb_size 1000): the CPU.
// - Not implemented: the code's generator re-initialisation every g_life epochs (the brief and the
//   paper keep one generator; a re-initialisation drawn per rank would also break the replicated
//   generator under data parallelism), its warm-up epochs with more batches and no KD, and the bn_mmt
//   momentum of Fast's DeepInversionHook (R_feature here is priors.ts's plain DeepInversion term).
// - The view is a circular shift (DeepInversion's jitter, as deepinv / cmi) instead of the code's
//   zero-padded RandomCrop (pad 4); flips off by default (mirrored digits are other shapes).
// - The student uses Adam (lr 1e-3) like this project's other methods on its tiny students, not the
//   code's SGD 0.2 with cosine annealing for CIFAR ResNets; the data pool is a ring of poolBatches·B
//   images, not an unbounded on-disk pool. τ = 20 is the code's default KLDiv temperature.
// - The patch-similarity prior (w_ps) for ViT teachers is PSAQ-ViT's (NAYER has only BN teachers);
//   off by default, as cmi. With a LeNet-5 teacher (no BatchNorm) there is no image prior at all.
// - stepsPerBatch 20 (code: g_steps 30 on CIFAR-10, 40 on CIFAR-100), warmupBatches 4 (code: 20
//   warm-up epochs of 10 batches) and the step counts per iteration are sized for this CPU, not tuned.
import { hparamChecks } from '../hparams.js';
import { maskedAdversarialKL } from '../losses.js';
import { arange, cat, keep, noGrad, randint, randn, tidy, zeros, type Tensor } from '../../tensor/tensor.js';
import { crossEntropy } from '../../tensor/functional.js';
import { Adam, type OptimizerMeta } from '../../nn/optim.js';
import { BatchNorm1d, Linear, type BatchNorm2d } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { normal_, zeros_ } from '../../nn/init.js';
import { DCGANGenerator } from '../../models/generators.js';
import type { Classifier } from '../../models/types.js';
import { ImageBank } from '../bank.js';
import { randomJitterFlip } from '../augment.js';
import { putModuleState, putOptimizerState, stateTensor, studentKD, unprefixed } from '../common.js';
import { batchNorms, isVit, priorKind, teacherForwardWithPrior, type PriorKind } from '../priors.js';
import type { DistillContext, DistillMethod, MethodState, StudentLoss, SyntheticBatch } from '../types.js';

export const NAYER_DEFAULTS = {
  /**
   * Class embeddings: true = the teacher's classification-head rows, L2-normalised; false = fixed
   * random Gaussian embeddings drawn from the run's seed. Measured (tiny MNIST ViT teacher, width 24,
   * depth 1, patch 7, trained 6 epochs: 72.8% val → ViT student width 16, depth 1; batch 32, these
   * defaults, 25 s ≈ 140–160 iterations per run, one thread, val accuracy, seeds 0 / 1): head rows
   * 31.3% / 35.3%, random 29.6% / 33.1%. Ahead on both seeds but by less than such short runs vary;
   * the head rows are the default (they also carry class similarity, as NAYER's text embeddings do).
   */
  classifierEmbedding: true,
  /** Width of the random embeddings (classifierEmbedding false); 0 = the width of the teacher's head input. */
  embeddingDim: 0,
  /** Std of the noisy layer's weights at each re-initialisation (the code's re_init_le: N(0, 1)). */
  noiseStd: 1,
  /** Weight of DeepInversion's BN-statistics prior R_feature, where the teacher has BatchNorm (NAYER: 10). */
  wBn: 10,
  /** Weight of PSAQ-ViT's patch-similarity prior (ViT teachers only; 0 = off, the default). */
  wPs: 0,
  /** Grid points of the patch prior's KDE (as deepinv). */
  psSamplePoints: 32,
  /** Weight of CE(T(x), y) on the target classes (NAYER: 0.5). */
  wOh: 0.5,
  /** Weight of the masked adversarial term −mean[m·KL(T ‖ S)] (NAYER: 1.33). */
  wAdv: 1.33,
  /** Finished batches before the adversarial term switches on (NAYER: after its warm-up epochs). */
  warmupBatches: 4,
  /** Adam lr of the generator and the noisy layer (NAYER: 4e-3). */
  lrG: 4e-3,
  /** Output width of the noisy layer = the generator's latent size (NAYER: le_emb_size 1000; the CPU). */
  latentDim: 256,
  /** Generator width (NAYER: ngf 64; 32 on this CPU, as dafl / cmi). */
  baseChannels: 32,
  /** Generator steps before a batch is finished and pooled (NAYER: g_steps 30 on CIFAR-10). */
  stepsPerBatch: 20,
  /** Generator steps per loop iteration (between student steps). */
  synthesisStepsPerIteration: 4,
  /** Balanced targets (every class once per C samples, as NAYER's generate_ys) instead of uniform random ones. */
  balancedLabels: true,
  /** Pool the lowest-loss images of a batch's steps (NAYER's best_inputs) rather than the last ones. */
  keepBest: true,
  /** Data-pool capacity, in batches. */
  poolBatches: 100,
  /** Views for the teacher and the student batches: random circular shift, ±px. */
  jitter: 2,
  /** Horizontal flips of the views: off by default for digits (NAYER: 0.5 on CIFAR). */
  flipProb: 0,
  /** Student KD temperature (NAYER's code: T = 20). */
  tau: 20,
  lrS: 1e-3,
  /** Student steps per loop iteration. */
  studentSteps: 2,
};
export type NayerHparams = typeof NAYER_DEFAULTS;

// ---------------------------------------------------------------------------------------------
// Class embeddings, the noisy layer and the generator

/**
 * The classification head of a classifier: its `head` (ViT), `fc2` (LeNet-5) or `linear` (CIFAR
 * ResNet) when that is a Linear with numClasses outputs, otherwise the last such Linear in module
 * order. (A DeiT's distillation head `head_dist` comes after `head`: the name is checked first.)
 */
export function classifierHead(model: Classifier): Linear {
  const named = model as unknown as Record<string, unknown>;
  for (const k of ['head', 'fc2', 'linear']) {
    const m = named[k];
    if (m instanceof Linear && m.outFeatures === model.numClasses) return m;
  }
  const linears = model.namedModules().map(([, m]) => m).filter((m): m is Linear => m instanceof Linear && m.outFeatures === model.numClasses);
  if (linears.length === 0) {
    throw new Error(`nayer: the teacher has no Linear layer with ${model.numClasses} outputs to take class embeddings from; use --classifier-embedding false (random class embeddings)`);
  }
  return linears[linears.length - 1]!;
}

/** The rows of the teacher's classification head, each divided by its L2 norm: [C, F], a detached copy. */
export function classifierEmbeddings(model: Classifier): Tensor {
  const w = classifierHead(model).weight;
  return noGrad(() => tidy(() => w.detach().div(w.detach().norm(2, 1, true).clampMin(1e-12)).contiguous().clone()));
}

/**
 * NAYER's noisy layer: K Linear layers D → d stored as weight [K, d, D] and bias [K, d]; rows
 * [kC, (k+1)C) of the input go through layer k (NLGenerator's `le1` ModuleList with nl = C).
 * `reset` re-draws it: weights N(0, std²), biases 0 (the code's re_init_le).
 */
export class NoisyLayer extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly layers: number, readonly inFeatures: number, readonly outFeatures: number, readonly chunk: number) {
    super();
    // drawn by reset() at the start of every batch
    this.weight = this.registerParameter('weight', zeros([layers, outFeatures, inFeatures]));
    this.bias = this.registerParameter('bias', zeros([layers, outFeatures]));
  }
  reset(std: number): void {
    normal_(this.weight, 0, std);
    zeros_(this.bias);
  }
  forward(e: Tensor): Tensor {
    const B = e.size(0);
    if (B > this.layers * this.chunk) throw new Error(`NoisyLayer: ${B} rows but ${this.layers} layers of ${this.chunk}`);
    return tidy(() => {
      const parts: Tensor[] = [];
      for (let k = 0; k * this.chunk < B; k++) {
        const rows = e.narrow(0, k * this.chunk, Math.min(this.chunk, B - k * this.chunk));
        parts.push(rows.mm(this.weight.select(0, k).t()).add(this.bias.select(0, k)));
      }
      return parts.length === 1 ? parts[0]! : cat(parts, 0);
    });
  }
}

/** The persistent part: BatchNorm1d over the batch's class embeddings (the code's `n1`) and the DCGAN body. */
export class NayerGenerator extends Module {
  embNorm: BatchNorm1d;
  body: DCGANGenerator;
  constructor(embeddingDim: number, body: DCGANGenerator) {
    super();
    this.embNorm = new BatchNorm1d(embeddingDim);
    this.body = body;
  }
  /** Images [B, C, H, W] in the teacher's normalised space from class embeddings [B, D] through a noisy layer. */
  forward(e: Tensor, noisy: NoisyLayer): Tensor {
    return tidy(() => this.body.forward(noisy.forward(this.embNorm.forward(e))));
  }
}

// ---------------------------------------------------------------------------------------------

const { int: requireInt, nonNegative: requireNonNegative, positive: requirePositive } = hparamChecks('nayer');

export class Nayer implements DistillMethod {
  readonly name = 'nayer';
  readonly studentStepsPerIteration: number;
  readonly studentOptimizer;
  readonly hparams: NayerHparams;
  readonly generator: NayerGenerator;
  readonly noisy: NoisyLayer;
  /** The constant class embeddings [C, D]. */
  readonly embeddings: Tensor;
  /** The data pool (finished batches' images). */
  readonly pool: ImageBank;
  private readonly kind: PriorKind;
  private readonly norms: BatchNorm2d[];
  /** Adam over the generator (replicated across ranks) and over the noisy layer (this rank's own). */
  private readonly genOpt: Adam;
  private readonly noisyOpt: Adam;
  private y!: Tensor;
  private candidate: { x: Tensor; cost: number } | null = null;
  private stepsDone = 0;
  private batchesDone = 0;

  constructor(ctx: DistillContext, overrides: Partial<NayerHparams> = {}) {
    const h = { ...NAYER_DEFAULTS, ...overrides };
    this.hparams = h;
    for (const k of ['wBn', 'wPs', 'wOh', 'wAdv'] as const) requireNonNegative(k, h[k]);
    for (const k of ['noiseStd', 'lrG', 'lrS', 'tau'] as const) requirePositive(k, h[k]);
    for (const k of ['latentDim', 'baseChannels', 'stepsPerBatch', 'synthesisStepsPerIteration', 'studentSteps', 'poolBatches', 'psSamplePoints'] as const) requireInt(k, h[k], 1);
    for (const k of ['embeddingDim', 'warmupBatches', 'jitter'] as const) requireInt(k, h[k], 0);
    if (!(h.flipProb >= 0 && h.flipProb <= 1)) throw new RangeError(`nayer: --flip-prob must be in [0, 1], got ${h.flipProb}`);
    if (h.wOh === 0 && h.wBn === 0 && h.wPs === 0 && h.wAdv === 0) throw new RangeError('nayer: every generator weight (--w-oh, --w-bn, --w-ps, --w-adv) is 0: the generator would have nothing to learn');
    if (h.classifierEmbedding && h.embeddingDim > 0) {
      throw new Error('nayer: --embedding-dim sizes the random class embeddings; the classifier embeddings have the width of the teacher\'s head input (give --classifier-embedding false, or --embedding-dim 0)');
    }
    if (h.wPs > 0 && !isVit(ctx.teacher)) {
      throw new Error('nayer: the patch-similarity prior (--w-ps) needs a ViT teacher (patch tokens); for a CNN teacher give --w-ps 0 (a BatchNorm teacher gets the BN prior, --w-bn)');
    }
    if (!Number.isInteger(ctx.batchSize) || ctx.batchSize < 2) {
      throw new Error(`nayer: the batch must hold at least 2 images (the generator's BatchNorm1d normalises the class embeddings over the batch), got ${ctx.batchSize}`);
    }
    const [C, H] = ctx.inputShape;
    if (H % 4 !== 0) throw new Error(`nayer: the DCGAN generator needs an image side divisible by 4, the teacher takes ${H}×${H}`);
    this.studentStepsPerIteration = h.studentSteps;
    this.studentOptimizer = { kind: 'adam' as const, lr: h.lrS };
    this.kind = priorKind(ctx.teacher);
    this.norms = batchNorms(ctx.teacher);

    let randomDim = h.embeddingDim;
    if (!h.classifierEmbedding && randomDim === 0) {
      try {
        randomDim = classifierHead(ctx.teacher).inFeatures;
      } catch {
        throw new Error(`nayer: the teacher has no Linear layer with ${ctx.numClasses} outputs whose width the random class embeddings could take; give --embedding-dim`);
      }
    }
    this.embeddings = keep(h.classifierEmbedding ? classifierEmbeddings(ctx.teacher) : randn([ctx.numClasses, randomDim]));
    const D = this.embeddings.size(1);
    const body = new DCGANGenerator({ latentDim: h.latentDim, imageSize: H, channels: C, baseChannels: h.baseChannels, mean: ctx.mean, std: ctx.std, bnEps: 1e-5 });
    this.generator = new NayerGenerator(D, body);
    this.generator.train();
    this.noisy = new NoisyLayer(Math.ceil(ctx.batchSize / ctx.numClasses), D, h.latentDim, ctx.numClasses);
    this.genOpt = new Adam(this.generator.parameters(), { lr: h.lrG, betas: [0.5, 0.999] });
    this.noisyOpt = new Adam(this.noisy.parameters(), { lr: h.lrG, betas: [0.5, 0.999] });
    this.noisyOpt.replicated = false; // every rank draws its own noisy layer per batch
    this.pool = new ImageBank(h.poolBatches * ctx.batchSize);
    this.newBatch(ctx);
  }

  /** Targets [B]: every class once per C samples, the remaining B mod C at random (or all at random). */
  private targets(ctx: DistillContext): Tensor {
    const B = ctx.batchSize;
    const C = ctx.numClasses;
    if (!this.hparams.balancedLabels) return randint(0, C, [B]);
    return tidy(() => {
      const parts: Tensor[] = [];
      for (let i = 0; i < Math.floor(B / C); i++) parts.push(arange(0, C, 1, { dtype: 'int64' }));
      if (B % C > 0) parts.push(randint(0, C, [B % C]));
      return parts.length === 1 ? parts[0]! : cat(parts, 0);
    });
  }

  /** New targets, a re-initialised noisy layer and fresh Adam state; the generator carries on. */
  private newBatch(ctx: DistillContext): void {
    this.y?.dispose();
    this.y = keep(this.targets(ctx));
    this.noisy.reset(this.hparams.noiseStd);
    this.genOpt.disposeState();
    this.noisyOpt.disposeState();
    this.dropCandidate();
    this.stepsDone = 0;
  }

  private dropCandidate(): void {
    this.candidate?.x.dispose();
    this.candidate = null;
  }

  /** Whether the adversarial term is on (after the warm-up batches). */
  get adversarial(): boolean {
    return this.hparams.wAdv > 0 && this.batchesDone >= this.hparams.warmupBatches;
  }

  /** One generator step on L_G: the generator and the noisy layer move. */
  private step(ctx: DistillContext, logs: Record<string, number>): void {
    const h = this.hparams;
    tidy(() => {
      const x = this.generator.forward(this.embeddings.indexSelect(0, this.y), this.noisy);
      const xv = h.jitter > 0 || h.flipProb > 0 ? randomJitterFlip(x, h.jitter, h.flipProb) : x;
      const wPrior = this.kind === 'bn' ? h.wBn : this.kind === 'ps' ? h.wPs : 0;
      const { out, prior } = teacherForwardWithPrior(ctx.teacher, xv, {
        kind: wPrior > 0 ? this.kind : 'none',
        norms: this.norms,
        psSamplePoints: h.wPs > 0 ? h.psSamplePoints : undefined,
      });
      const oh = crossEntropy(out.logits, this.y);
      let loss = oh.mul(h.wOh);
      logs['G/oh'] = oh.item();
      if (prior) {
        loss = loss.add(prior.mul(wPrior));
        logs[this.kind === 'bn' ? 'G/bn' : 'G/ps'] = prior.item();
      }
      if (this.adversarial) {
        const s = ctx.student.forward(xv).logits;
        const adv = maskedAdversarialKL(out.logits, s);
        loss = loss.add(adv.mul(h.wAdv));
        logs['G/adv'] = adv.item();
      }
      const cost = loss.item();
      logs['G/total'] = cost;
      if (!this.candidate || !h.keepBest || cost < this.candidate.cost) {
        this.dropCandidate();
        this.candidate = { x: keep(noGrad(() => x.detach().clone())), cost };
      }
      this.genOpt.zeroGrad();
      this.noisyOpt.zeroGrad();
      loss.backward();
      this.genOpt.step();
      this.noisyOpt.step();
      ctx.student.zeroGrad();
    });
    this.stepsDone++;
    if (this.stepsDone >= h.stepsPerBatch) {
      this.pool.add(this.candidate!.x);
      this.batchesDone++;
      this.newBatch(ctx);
    }
  }

  synthesize(ctx: DistillContext): SyntheticBatch {
    const logs: Record<string, number> = {};
    // NAYER synthesises with the student in eval mode (its BatchNorm statistics untouched by synthesis).
    const was = ctx.student.training;
    ctx.student.eval();
    try {
      for (let s = 0; s < this.hparams.synthesisStepsPerIteration; s++) this.step(ctx, logs);
    } finally {
      ctx.student.train(was);
    }
    return { x: this.sampleBatch(ctx), logs: { ...logs, 'G/banked': this.batchesDone } };
  }

  /** B images from the pool, or the batch in progress until the first batch is finished. */
  private sampleBatch(ctx: DistillContext): Tensor {
    if (this.pool.size > 0) return this.pool.sample(ctx.batchSize);
    return this.candidate ? noGrad(() => this.candidate!.x.clone()) : this.generate();
  }

  /** The generator's images for the current targets and noisy layer, in eval mode (no statistics moved). */
  private generate(): Tensor {
    const was = this.generator.training;
    this.generator.eval();
    try {
      return noGrad(() => this.generator.forward(this.embeddings.indexSelect(0, this.y), this.noisy));
    } finally {
      this.generator.train(was);
    }
  }

  studentBatch(ctx: DistillContext, fresh: SyntheticBatch, k: number): SyntheticBatch {
    const h = this.hparams;
    const x = k === 0 ? fresh.x : this.sampleBatch(ctx);
    return { x: h.jitter > 0 || h.flipProb > 0 ? randomJitterFlip(x, h.jitter, h.flipProb) : x, logs: {} };
  }

  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    return studentKD(ctx, batch, { tau: this.hparams.tau });
  }

  /** The newest pool images (no random draws), or the batch in progress. */
  previewBatch(_ctx: DistillContext, n: number): Tensor {
    if (this.pool.size === 0) return this.candidate ? noGrad(() => this.candidate!.x.clone()) : this.generate();
    return this.pool.newest(n);
  }

  stateDict(): MethodState {
    const tensors: Record<string, Tensor> = { ...this.pool.stateDict('pool') };
    const meta: Record<string, unknown> = { stepsDone: this.stepsDone, batchesDone: this.batchesDone };
    putModuleState(tensors, 'nayer.gen.', this.generator);
    putModuleState(tensors, 'nayer.noisy.', this.noisy);
    noGrad(() => {
      tensors['nayer.emb'] = this.embeddings.clone();
      tensors['nayer.y'] = this.y.clone();
      if (this.candidate) tensors['nayer.cand.x'] = this.candidate.x.clone();
    });
    meta.optim = putOptimizerState(tensors, 'nayer.optim.', this.genOpt);
    meta.noisyOptim = putOptimizerState(tensors, 'nayer.noisyOptim.', this.noisyOpt);
    // a JSON number round-trips a double exactly
    meta.candidateCost = this.candidate ? this.candidate.cost : null;
    return { tensors, meta };
  }

  loadStateDict(s: MethodState): void {
    const t = s.tensors;
    const need = (k: string): Tensor => stateTensor(t, k, 'nayer');
    const emb = need('nayer.emb');
    const y = need('nayer.y');
    if (emb.ndim !== 2 || emb.size(0) !== this.embeddings.size(0) || emb.size(1) !== this.embeddings.size(1)) {
      throw new Error(`nayer state: class embeddings [${emb.shape.join(', ')}] but this run has [${this.embeddings.shape.join(', ')}] (--classifier-embedding or --embedding-dim changed)`);
    }
    if (y.size(0) !== this.y.size(0)) throw new Error(`nayer state: ${y.size(0)} targets but this run's batch is ${this.y.size(0)} (the batch size changed)`);
    this.generator.loadStateDict(unprefixed('nayer.gen.', t));
    this.noisy.loadStateDict(unprefixed('nayer.noisy.', t));
    noGrad(() => this.embeddings.copy_(emb));
    this.y.dispose();
    this.y = keep(noGrad(() => y.clone()));
    this.genOpt.loadStateDict({ state: unprefixed('nayer.optim.', t), meta: s.meta.optim as OptimizerMeta });
    this.noisyOpt.loadStateDict({ state: unprefixed('nayer.noisyOptim.', t), meta: s.meta.noisyOptim as OptimizerMeta });
    this.pool.loadStateDict(t, 'pool');
    this.dropCandidate();
    const cx = t['nayer.cand.x'];
    if (cx) this.candidate = { x: keep(noGrad(() => cx.clone())), cost: s.meta.candidateCost as number };
    this.stepsDone = s.meta.stepsDone as number;
    this.batchesDone = s.meta.batchesDone as number;
  }

  dispose(): void {
    this.generator.dispose();
    this.noisy.dispose();
    this.genOpt.disposeState();
    this.noisyOpt.disposeState();
    this.embeddings.dispose();
    this.y.dispose();
    this.dropCandidate();
    this.pool.dispose();
  }
}

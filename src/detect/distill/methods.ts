// Data-free detection methods (METHODS.md's detection section), one class each with the same verbs
// as the classification methods (synthesise a batch; state for resume; a preview batch). The
// student's loss is the same for all (losses.ts studentDetectionLoss): only how canvases are made
// differs.
//   tgan     class-conditional transformer generator drawing one object per sampled box, composited on
//            the teacher's empty background (layout.ts); G: λ_set·(teacher's set loss against the
//            layout) − λ_adv·discrepancy + λ_attn·compactness + λ_tv·TV (+ λ_bn·the teacher's BatchNorm
//            statistics, DeepInversion's R_feature); `layout 0`: whole canvases with
//            λ_conf·confidence + λ_ie·balance + λ_sparse·sparsity instead of the set loss
//   dfad     DCGAN generator; G maximises the discrepancy alone; 5 student steps per G step
//   deepinv  no generator: canvases optimised directly so the teacher finds sampled target boxes
//            (DIODE's recipe for detectors: the DETR set loss against random boxes and classes),
//            + TV and L2 priors; finished batches go to an image bank the student samples
//   kd       reference, not data-free: the real training canvases
import { keep, noGrad, randint, randn, tensor, tidy, type Tensor } from '../../tensor/tensor.js';
import { Adam } from '../../nn/optim.js';
import { DCGANGenerator, TransformerGenerator } from '../../models/generators.js';
import { GeneratorMethod, GeneratorTrainer, unprefixed } from '../../distill/common.js';
import { ImageBank } from '../../distill/bank.js';
import { l2Prior, totalVariation, withBatchNormPrior } from '../../distill/losses.js';
import type { MethodState } from '../../distill/types.js';
import { normalize } from '../../data/augment.js';
import type { DetectionDataset } from '../../data/detection.js';
import type { DETR } from '../../models/detr.js';
import type { BatchNorm2d } from '../../nn/layers.js';
import { DETR_LOSS_DEFAULTS, detrSetLoss, type DetectionTarget } from '../loss.js';
import type { Box4 } from '../boxes.js';
import { attentionCompactnessLoss, matchedDiscrepancy, queryBalanceLoss, queryConfidenceLoss, queryExcessLoss, type StudentDistillOptions } from './losses.js';
import { hashSeeds, mulberry32 } from '../../data/loader.js';
import { randomAffine } from '../../distill/augment.js';
import { composeCanvases, emptyBackground, type EmptyBackground } from './layout.js';

export interface DetectDistillContext {
  teacher: DETR;
  student: DETR;
  inputShape: [number, number, number];
  numClasses: number;
  mean: number[];
  std: number[];
  batchSize: number;
  /** Real training canvases, only for the `kd` reference. */
  realTrain?: DetectionDataset;
}

export interface DetectSynthBatch {
  /** Canvases in the teacher's normalised space, detached. */
  x: Tensor;
  logs: Record<string, number>;
}

export interface DetectDistillMethod {
  readonly name: string;
  readonly studentStepsPerIteration: number;
  /** Adam learning rate of the student. */
  readonly studentLr: number;
  readonly student: StudentDistillOptions;
  readonly hparams: Record<string, number>;
  synthesize(ctx: DetectDistillContext, iteration: number): DetectSynthBatch;
  stateDict(): MethodState;
  loadStateDict(s: MethodState): void;
  /** Fixed canvases for the sample grids (the generator's preview latents, or bank samples). */
  previewBatch(ctx: DetectDistillContext, n: number): Tensor;
  /**
   * Canvases for the iteration's student step k ≥ 1, when the method makes fresh ones (no generator
   * update, no gradient); absent: every student step of an iteration reuses the synthesised batch.
   */
  extraBatch?(ctx: DetectDistillContext, k: number): Tensor;
  /** True when synthesize and extraBatch never read the student: they may run in another process (--generator-process, feed.ts). */
  readonly studentFreeSynthesis?: boolean;
  dispose(): void;
}

/** Shared by every method: the student's objective and its optimiser. */
export const DETECT_STUDENT_DEFAULTS = {
  /** θ: a teacher query is a pseudo-target when its best object class has probability > θ. */
  threshold: 0.5,
  /** Class-agnostic NMS IoU among the pseudo-targets (losses.ts pseudoTargets); 1 = off. */
  nmsIou: 1,
  /**
   * The student's set loss: relative CE weight of "no object" for its unmatched queries (DETR's
   * eos_coef, 0.1 in DETR and in supervised training here).
   */
  eosCoef: 0.1,
  tau: 2,
  kdWeight: 1,
  setWeight: 1,
  /**
   * The dense token loss of supervised training (dense.ts), on the pseudo-targets; off by default:
   * in a 2-minute `kd` run against a weak teacher it did not help (val mAP 0.0008 vs 0.0014 at ~400
   * iterations) — to measure again with the trained teacher.
   */
  denseWeight: 0,
  /** Encoder feature distillation through a training-only linear adapter (losses.ts featureDistillLoss). */
  featWeight: 0,
  /** Measured: `kd` at 5e-4 had val mAP 0.0012 after 80 iterations, at 2e-3 0.0068 after 100 and 0.21 after 5 minutes. */
  lrS: 2e-3,
  studentSteps: 1,
};

function studentOptions(h: typeof DETECT_STUDENT_DEFAULTS): StudentDistillOptions {
  return { threshold: h.threshold, nmsIou: h.nmsIou, tau: h.tau, kdWeight: h.kdWeight, setWeight: h.setWeight, denseWeight: h.denseWeight, featWeight: h.featWeight, loss: { ...DETR_LOSS_DEFAULTS, eosCoef: h.eosCoef } };
}

/** The teacher's BatchNorm layers (its conv stem), for the feature-statistics prior; an error when it has none. */
function teacherNorms(teacher: DETR): BatchNorm2d[] {
  const norms = teacher.stem?.norms ?? [];
  if (norms.length === 0) throw new RangeError(`the BatchNorm statistics prior (--lambda-bn / --alpha-bn) needs a teacher with BatchNorm layers; this one (stem '${teacher.config.stem}') has none`);
  return norms;
}

/** One generator update: backward through (frozen) teacher and student, then drop the student's grads. */
function generatorStep(gen: GeneratorTrainer<DCGANGenerator | TransformerGenerator>, loss: Tensor, student: DETR): void {
  gen.opt.zeroGrad();
  loss.backward();
  gen.opt.step();
  student.zeroGrad();
}

// ---------------------------------------------------------------------------------------------

export const DETECT_TGAN_DEFAULTS = {
  ...DETECT_STUDENT_DEFAULTS,
  /**
   * 4 student steps per generator step, each on its own canvases (freshBatches). Measured (60-minute
   * runs, 1 thread each, side by side): 2 steps on one batch → val mAP 0.2404 (test 0.2485); 4 fresh
   * → 0.2863 (test 0.2844) — ahead at every time (val 0.107 vs 0.036 at 11 minutes).
   */
  studentSteps: 4,
  /**
   * Pseudo-target NMS at IoU 0.5 (losses.ts pseudoTargets). Measured (60 minutes, 4 fresh steps):
   * val mAP 0.3079 (test 0.3066) vs 0.2863 (0.2844) without. Only tgan's default: not measured for
   * the other methods.
   */
  nmsIou: 0.5,
  /**
   * The student's no-object CE weight 1 instead of DETR's 0.1: the students fired ~6 queries above
   * 0.5 per real canvas for 2.5 objects. Measured (60 minutes, 1 thread, with the two defaults above):
   * val mAP 0.3079 (test 0.3066) at 0.1, 0.3620 (0.3660) at 0.5, 0.3976 (0.3934) at 1.
   */
  eosCoef: 1,
  /**
   * 1: layout canvases (layout.ts) — a class-conditional transformer generator draws one object per
   * box sampled from the priors below, composited onto the teacher's empty background, and the
   * teacher's set loss against those boxes and classes grades it (λ_set); 0: the generator draws
   * whole canvases graded by the confidence, balance and sparsity terms (measured on the shipped
   * teacher: collapses onto a texture of 12 detections, student val mAP 0.0000 at 5 minutes; use
   * --layout 0 --lambda-conf 1 --lambda-ie 5 --lambda-sparse 1 for it).
   */
  layout: 1,
  /** Layout mode: side of each generated object image, before it is resampled into its box. */
  objectSize: 32,
  minObjects: 1,
  maxObjects: 4,
  /** Layout mode: sampled box sides as fractions of the canvas. */
  minScale: 0.2,
  maxScale: 0.45,
  /** Layout mode: the teacher's DETR set loss against the sampled boxes and classes. */
  lambdaSet: 1,
  /**
   * Layout mode: a random affine view of each object before it is composited (zoom ±augScale, shift
   * ±augShift object pixels, rotation ±augRotate°; distill/augment.ts randomAffine). Plug-In Inversion's
   * remedy for ViT teachers: without it the objects were stripe textures the teacher read as 2–3 objects each.
   */
  augScale: 0.15,
  augShift: 3,
  augRotate: 15,
  latentDim: 64,
  /**
   * Layout mode: std of the generator's initial label embedding (TransformerGenerator.labelInitStd).
   * Measured, 300 generator steps from scratch on the shipped teacher: at timm's 0.02 the teacher's
   * matched query reads the requested class on 12% of the objects (chance: 10%), at 1 on 40%, at 3 on 46%.
   * Students (60 minutes, 1 thread): val mAP 0.3237 at 1 vs 0.3079 at 0.02 (no-object weight 0.1),
   * 0.3954 vs 0.3620 (weight 0.5) — behind for the first ~40 minutes, ahead at the end both times.
   */
  labelStd: 1,
  genDim: 64,
  genDepth: 2,
  genHeads: 4,
  refineChannels: 16,
  lrG: 1e-3,
  /**
   * −λ_adv·(matched discrepancy) in the generator's loss. 0 by default, measured (5-minute runs on the
   * shipped teacher, layout canvases): λ_adv 1 → student val mAP 0.0000 after 250 iterations, 0 →
   * 0.0049; 0.2 → 0.0009 vs 0 → 0.0017 after 150 (with object views). The adversary drives the objects
   * toward textures both detectors read differently, before the student has learnt anything.
   */
  lambdaAdv: 0,
  /** Whole-canvas mode (layout 0): with it, 1 (in layout mode the set loss covers confidence). */
  lambdaConf: 0,
  /** Whole-canvas mode: DAFL's β = 5 (measured: with 1 every confident query of a 2-minute run was the same class); layout mode samples classes uniformly. */
  lambdaIe: 0,
  lambdaAttn: 1,
  /** Whole-canvas mode: 1 — queries outside the top-k pushed to "no object" (losses.ts queryExcessLoss); in layout mode the set loss's no-object term does this. */
  lambdaSparse: 0,
  /** Total variation of the canvases (measured: without it the generator draws a dotted lattice). */
  lambdaTv: 0.1,
  /**
   * DeepInversion's feature-statistics prior on the teacher's BatchNorm layers (its conv stem):
   * Σ_l ‖μ_l − μ_BN‖ + ‖σ²_l − σ²_BN‖ of the canvases' features (distill/losses.ts). The running
   * statistics are the only trace of the training images the teacher keeps; data-free. Measured
   * (60-minute runs, 1 thread each, side by side): λ_bn 1 → val mAP 0.2404 (test 0.2485) vs 0 → 0.1976
   * (test 0.2406); 10-minute trials: 0 / 0.1 / 1 / 3 → val 0.035 / 0.014 / 0.042 / 0.043.
   */
  lambdaBn: 1,
  /**
   * 1 — student steps after an iteration's first train on fresh canvases from the generator (new
   * layout, latents and views; no generator update, no gradient), 0 — they reuse the iteration's
   * batch. The generator's loss does not involve the student (λ_adv 0), so the generator need not
   * step as often as the student: a fresh batch costs a generator forward (~0.05 s for 32 canvases at
   * 1 thread) where a generator step costs ~0.26 s (backward through the teacher).
   */
  freshBatches: 1,
  /** Queries per canvas the confidence, balance and attention terms act on. */
  topK: 2,
};

export class DetectTgan extends GeneratorMethod<TransformerGenerator> implements DetectDistillMethod {
  readonly name = 'tgan';
  readonly studentStepsPerIteration: number;
  readonly studentLr: number;
  readonly student: StudentDistillOptions;
  readonly hparams: typeof DETECT_TGAN_DEFAULTS;
  readonly studentFreeSynthesis: boolean;
  protected readonly gen: GeneratorTrainer<TransformerGenerator>;
  /** Layout mode: the teacher's emptiest constant canvas (layout.ts). */
  readonly background: EmptyBackground | null = null;
  constructor(ctx: DetectDistillContext, overrides: Partial<typeof DETECT_TGAN_DEFAULTS> = {}) {
    super();
    const h = { ...DETECT_TGAN_DEFAULTS, ...overrides };
    this.hparams = h;
    this.studentStepsPerIteration = h.studentSteps;
    this.studentLr = h.lrS;
    this.student = studentOptions(h);
    this.studentFreeSynthesis = h.lambdaAdv === 0;
    const [C, H] = ctx.inputShape;
    if (h.freshBatches && h.lambdaAdv > 0) throw new RangeError('tgan: --lambda-adv > 0 needs --fresh-batches 0 (the adversarial generator must step against every batch the student sees)');
    if (h.lambdaBn > 0) teacherNorms(ctx.teacher);
    if (h.layout && !(h.minObjects >= 1 && h.maxObjects >= h.minObjects && h.minScale > 0 && h.maxScale >= h.minScale && h.maxScale <= 1)) {
      throw new RangeError(`tgan layout: need 1 ≤ minObjects ≤ maxObjects and 0 < minScale ≤ maxScale ≤ 1, got ${h.minObjects}-${h.maxObjects} objects, scale ${h.minScale}-${h.maxScale}`);
    }
    // Layout mode: class-conditional object images in pixel space [0, 1] (mean 0, std 1 for the
    // generator's output affine), composited, then normalised. Whole-canvas mode: normalised canvases.
    const size = h.layout ? h.objectSize : H;
    const g = new TransformerGenerator({
      latentDim: h.latentDim, imageSize: size, channels: C, patchSize: Math.min(ctx.teacher.config.patchSize, size), dim: h.genDim, depth: h.genDepth, heads: h.genHeads,
      refineChannels: h.refineChannels, ...(h.layout ? { numClasses: ctx.numClasses, labelInitStd: h.labelStd, mean: Array<number>(C).fill(0), std: Array<number>(C).fill(1) } : { mean: ctx.mean, std: ctx.std }),
    });
    this.gen = new GeneratorTrainer(g, h.latentDim, h.lrG, [0.5, 0.999], h.layout ? 16 * h.maxObjects : 16);
    if (h.layout) this.background = emptyBackground(ctx.teacher, ctx.inputShape, ctx.mean, ctx.std);
    if (h.freshBatches) this.extraBatch = (c) => this.freshCanvases(c);
  }

  /** Layout mode: canvases (normalised) for sampled targets, the generator's objects for latents z [B·K, latent]. */
  private layoutCanvases(ctx: DetectDistillContext, targets: DetectionTarget[], z: Tensor, preview: boolean): Tensor {
    const K = this.hparams.maxObjects;
    const labels = tensor(targets.flatMap((t) => Array.from({ length: K }, (_, j) => t.labels[j] ?? 0)), { dtype: 'int64' });
    const h = this.hparams;
    let objects = preview ? this.gen.preview(z.size(0), labels) : this.gen.generator.forward(z, labels);
    if (!preview && (h.augScale > 0 || h.augShift > 0 || h.augRotate > 0)) objects = randomAffine(objects, { scale: h.augScale, shift: h.augShift, rotate: h.augRotate, fill: 0 });
    return normalize(composeCanvases(objects, targets, K, ctx.inputShape[1], this.background!), ctx.mean, ctx.std);
  }

  override previewBatch(ctx: DetectDistillContext, n: number): Tensor {
    if (!this.hparams.layout) return this.gen.preview(n);
    const m = Math.min(n, 16);
    const targets = sampleTargets(m, ctx.numClasses, 0x5eed, this.hparams);
    return this.layoutCanvases(ctx, targets, this.gen.previewLatents.narrow(0, 0, m * this.hparams.maxObjects), true);
  }

  /** With freshBatches: new canvases from the current generator (no gradient). */
  extraBatch?: (ctx: DetectDistillContext, k: number) => Tensor;

  /**
   * A batch of the generator's canvases for new latents (and, in layout mode, a newly sampled layout:
   * its targets; null for whole canvases). The layout is drawn from libtorch's generator (re-seeded
   * per iteration by the loop): resume is exact.
   */
  private sampleCanvases(ctx: DetectDistillContext): { x: Tensor; targets: DetectionTarget[] | null } {
    const h = this.hparams;
    if (!h.layout) return { x: this.gen.generator.forward(this.gen.latent(ctx.batchSize)), targets: null };
    const targets = sampleTargets(ctx.batchSize, ctx.numClasses, randint(0, 2 ** 31 - 1, [1]).item(), h);
    return { x: this.layoutCanvases(ctx, targets, this.gen.latent(ctx.batchSize * h.maxObjects), false), targets };
  }

  /** No-gradient canvases for freshly sampled layouts and latents (object views as in training). */
  private freshCanvases(ctx: DetectDistillContext): Tensor {
    return noGrad(() => this.sampleCanvases(ctx).x);
  }

  synthesize(ctx: DetectDistillContext): DetectSynthBatch {
    const h = this.hparams;
    const logs: Record<string, number> = {};
    const { x, targets } = this.sampleCanvases(ctx);
    const { out: t, prior } = withBatchNormPrior(h.lambdaBn > 0 ? teacherNorms(ctx.teacher) : [], () => ctx.teacher.forward(x, { returnAttention: h.lambdaAttn > 0 }));
    let loss = x.sum().mul(0);
    if (prior) {
      loss = loss.add(prior.mul(h.lambdaBn));
      logs['G/bn'] = prior.item();
    }
    if (targets && h.lambdaSet > 0) {
      const set = detrSetLoss(t, targets);
      loss = loss.add(set.loss.mul(h.lambdaSet));
      logs['G/set'] = set.loss.item();
    }
    if (h.lambdaAdv > 0) {
      const s = ctx.student.forward(x, { aux: false });
      const d = matchedDiscrepancy(t, { ...s, aux: [] }, { threshold: h.threshold, tau: h.tau });
      loss = loss.sub(d.mul(h.lambdaAdv));
      logs['G/discrepancy'] = d.item();
    }
    if (h.lambdaConf > 0) {
      const c = queryConfidenceLoss(t.logits, h.topK);
      loss = loss.add(c.mul(h.lambdaConf));
      logs['G/conf'] = c.item();
    }
    if (h.lambdaIe > 0) {
      const ie = queryBalanceLoss(t.logits, h.topK);
      loss = loss.add(ie.mul(h.lambdaIe));
      logs['G/ie'] = ie.item();
    }
    if (h.lambdaSparse > 0) {
      const sp = queryExcessLoss(t.logits, h.topK);
      loss = loss.add(sp.mul(h.lambdaSparse));
      logs['G/sparse'] = sp.item();
    }
    if (h.lambdaTv > 0) {
      const tv = totalVariation(x, 'l2');
      loss = loss.add(tv.mul(h.lambdaTv));
      logs['G/tv'] = tv.item();
    }
    if (h.lambdaAttn > 0) {
      const a = attentionCompactnessLoss(t.crossAttentions![t.crossAttentions!.length - 1]!, t.logits, h.topK);
      loss = loss.add(a.mul(h.lambdaAttn));
      logs['G/attn'] = a.item();
    }
    logs['G/total'] = loss.item();
    generatorStep(this.gen, loss, ctx.student);
    return { x: x.detach(), logs };
  }

}

// ---------------------------------------------------------------------------------------------

export const DETECT_DFAD_DEFAULTS = {
  ...DETECT_STUDENT_DEFAULTS,
  /** DFAD's 5 student steps per generator step. */
  studentSteps: 5,
  latentDim: 64,
  baseChannels: 32,
  lrG: 1e-3,
};

/**
 * DFAD for detectors: the generator maximises the matched discrepancy alone. The student uses Adam
 * (DFAD's SGD 0.1 diverges for a DETR from scratch; said in the README).
 */
export class DetectDfad extends GeneratorMethod<DCGANGenerator> implements DetectDistillMethod {
  readonly name = 'dfad';
  readonly studentStepsPerIteration: number;
  readonly studentLr: number;
  readonly student: StudentDistillOptions;
  readonly hparams: typeof DETECT_DFAD_DEFAULTS;
  protected readonly gen: GeneratorTrainer<DCGANGenerator>;
  constructor(ctx: DetectDistillContext, overrides: Partial<typeof DETECT_DFAD_DEFAULTS> = {}) {
    super();
    const h = { ...DETECT_DFAD_DEFAULTS, ...overrides };
    this.hparams = h;
    this.studentStepsPerIteration = h.studentSteps;
    this.studentLr = h.lrS;
    this.student = studentOptions(h);
    const [C, H] = ctx.inputShape;
    const g = new DCGANGenerator({ latentDim: h.latentDim, imageSize: H, channels: C, baseChannels: h.baseChannels, mean: ctx.mean, std: ctx.std });
    this.gen = new GeneratorTrainer(g, h.latentDim, h.lrG, [0.5, 0.999], 16);
  }
  synthesize(ctx: DetectDistillContext): DetectSynthBatch {
    const h = this.hparams;
    const x = this.gen.generator.forward(this.gen.latent(ctx.batchSize));
    const t = ctx.teacher.forward(x);
    const s = ctx.student.forward(x, { aux: false });
    const d = matchedDiscrepancy(t, s, { threshold: h.threshold, tau: h.tau });
    generatorStep(this.gen, d.neg(), ctx.student);
    return { x: x.detach(), logs: { 'G/discrepancy': d.item() } };
  }
}

// ---------------------------------------------------------------------------------------------

export const DETECT_DEEPINV_DEFAULTS = {
  ...DETECT_STUDENT_DEFAULTS,
  lrX: 0.1,
  /**
   * Std of the N(0, σ²) initial canvases (normalised space). With σ = 1 and α_tv 3e-3 a 60-step batch
   * against a (weak, 3-minute) teacher was still salt-and-pepper noise (TV 9.8); σ = 0.2 and α_tv 0.05
   * gave smoother canvases (TV 1.9) at the same set loss — a judgement by eye, to revisit with the real teacher.
   */
  initStd: 0.2,
  /** Optimisation steps before a batch is finished and banked. */
  stepsPerBatch: 60,
  /** Canvas-optimisation steps per loop iteration. */
  inversionSteps: 4,
  alphaTv: 0.05,
  alphaL2: 1e-4,
  /** DeepInversion's R_feature on the teacher's BatchNorm layers (see tgan's lambdaBn); 0 = off. */
  alphaBn: 0,
  minObjects: 1,
  maxObjects: 4,
  /** Sampled box sides as fractions of the canvas. */
  minScale: 0.2,
  maxScale: 0.45,
  bankBatches: 50,
};

/** Random DETR targets (classes, cxcywh boxes inside the canvas), a pure function of `seed`. */
export function sampleTargets(n: number, numClasses: number, seed: number, h: Pick<typeof DETECT_DEEPINV_DEFAULTS, 'minObjects' | 'maxObjects' | 'minScale' | 'maxScale'>): DetectionTarget[] {
  const rnd = mulberry32(seed);
  const u = (): number => rnd() / 4294967296;
  return Array.from({ length: n }, () => {
    const k = h.minObjects + Math.floor(u() * (h.maxObjects - h.minObjects + 1));
    const t: DetectionTarget = { labels: [], boxes: [] };
    for (let j = 0; j < k; j++) {
      const w = h.minScale + u() * (h.maxScale - h.minScale);
      const hh = h.minScale + u() * (h.maxScale - h.minScale);
      t.labels.push(Math.floor(u() * numClasses));
      t.boxes.push([w / 2 + u() * (1 - w), hh / 2 + u() * (1 - hh), w, hh] as Box4);
    }
    return t;
  });
}

export class DetectDeepInversion implements DetectDistillMethod {
  readonly name = 'deepinv';
  readonly studentStepsPerIteration: number;
  readonly studentLr: number;
  readonly student: StudentDistillOptions;
  readonly hparams: typeof DETECT_DEEPINV_DEFAULTS;
  private readonly bank: ImageBank;
  private x!: Tensor;
  private targets!: DetectionTarget[];
  private opt!: Adam;
  private stepsDone = 0;
  private batchesDone = 0;
  private readonly numClasses: number;
  constructor(ctx: DetectDistillContext, overrides: Partial<typeof DETECT_DEEPINV_DEFAULTS> = {}) {
    const h = { ...DETECT_DEEPINV_DEFAULTS, ...overrides };
    this.hparams = h;
    this.numClasses = ctx.numClasses;
    this.studentStepsPerIteration = h.studentSteps;
    this.studentLr = h.lrS;
    this.student = studentOptions(h);
    if (h.alphaBn > 0) teacherNorms(ctx.teacher);
    this.bank = new ImageBank(h.bankBatches * ctx.batchSize);
    this.newBatch(noGrad(() => randn([ctx.batchSize, ...ctx.inputShape]).mul(h.initStd)));
  }

  /** Starts batch number `batchesDone` from the given initial canvases (kept). */
  private newBatch(init: Tensor, optState?: MethodState): void {
    this.x?.dispose();
    this.opt?.disposeState();
    this.x = keep(init.detach().clone().requiresGrad_(true));
    // The targets of batch b are a function of b alone, so resume needs only the counter.
    this.targets = sampleTargets(init.size(0), this.numClasses, hashSeeds([this.batchesDone, 0xd10de]), this.hparams);
    this.opt = new Adam([this.x], { lr: this.hparams.lrX, betas: [0.5, 0.99] });
    this.opt.replicated = false; // each data-parallel rank optimises its own share of the batch
    if (optState) this.opt.loadStateDict({ state: unprefixed('inv.optim.', optState.tensors), meta: optState.meta.invOptim as never });
  }

  synthesize(ctx: DetectDistillContext): DetectSynthBatch {
    const h = this.hparams;
    const logs: Record<string, number> = {};
    for (let s = 0; s < h.inversionSteps; s++) {
      tidy(() => {
        const { out, prior } = withBatchNormPrior(h.alphaBn > 0 ? teacherNorms(ctx.teacher) : [], () => ctx.teacher.forward(this.x));
        const set = detrSetLoss(out, this.targets);
        const tv = totalVariation(this.x, 'l2');
        const l2 = l2Prior(this.x);
        let loss = set.loss.add(tv.mul(h.alphaTv)).add(l2.mul(h.alphaL2));
        if (prior) {
          loss = loss.add(prior.mul(h.alphaBn));
          logs['G/bn'] = prior.item();
        }
        logs['G/set'] = set.loss.item();
        logs['G/tv'] = tv.item();
        this.opt.zeroGrad();
        loss.backward();
        this.opt.step();
      });
      this.stepsDone++;
      if (this.stepsDone >= h.stepsPerBatch) {
        this.bank.add(this.x.detach());
        this.batchesDone++;
        this.stepsDone = 0;
        this.newBatch(noGrad(() => randn([ctx.batchSize, ...ctx.inputShape]).mul(h.initStd)));
      }
    }
    const x = this.bank.size > 0 ? this.bank.sample(ctx.batchSize) : this.x.detach().clone();
    return { x, logs: { ...logs, 'G/banked': this.batchesDone } };
  }

  previewBatch(_ctx: DetectDistillContext, n: number): Tensor {
    return this.bank.size > 0 ? this.bank.sample(Math.min(n, this.bank.size)) : this.x.detach().narrow(0, 0, Math.min(n, this.x.size(0))).clone();
  }

  stateDict(): MethodState {
    const tensors: Record<string, Tensor> = { ...this.bank.stateDict(), 'inv.x': this.x.detach().clone() };
    const sd = this.opt.stateDict();
    for (const [k, t] of Object.entries(sd.state)) tensors[`inv.optim.${k}`] = t;
    return { tensors, meta: { invOptim: sd.meta, stepsDone: this.stepsDone, batchesDone: this.batchesDone } };
  }

  loadStateDict(s: MethodState): void {
    this.bank.loadStateDict(s.tensors);
    const x = s.tensors['inv.x'];
    if (!x) throw new Error('deepinv state has no inv.x');
    this.stepsDone = s.meta.stepsDone as number;
    this.batchesDone = s.meta.batchesDone as number;
    this.newBatch(x, s);
  }

  dispose(): void {
    this.bank.dispose();
    this.x.dispose();
    this.opt.disposeState();
  }
}

// ---------------------------------------------------------------------------------------------

/** Reference (not data-free): the student learns from the teacher on the real training canvases. */
export class DetectKdReal implements DetectDistillMethod {
  readonly name = 'kd';
  readonly studentStepsPerIteration: number;
  readonly studentLr: number;
  readonly student: StudentDistillOptions;
  readonly hparams: typeof DETECT_STUDENT_DEFAULTS;
  constructor(ctx: DetectDistillContext, overrides: Partial<typeof DETECT_STUDENT_DEFAULTS> = {}) {
    if (!ctx.realTrain) throw new Error('kd needs the real training canvases');
    const h = { ...DETECT_STUDENT_DEFAULTS, ...overrides };
    this.hparams = h;
    this.studentStepsPerIteration = h.studentSteps;
    this.studentLr = h.lrS;
    this.student = studentOptions(h);
  }
  private real(ctx: DetectDistillContext, n: number): Tensor {
    const d = ctx.realTrain!;
    return tidy(() => normalize(d.images.indexSelect(0, randint(0, d.images.size(0), [n])), d.mean, d.std));
  }
  synthesize(ctx: DetectDistillContext): DetectSynthBatch {
    return { x: this.real(ctx, ctx.batchSize), logs: {} };
  }
  previewBatch(ctx: DetectDistillContext, n: number): Tensor {
    const d = ctx.realTrain!;
    return tidy(() => normalize(d.images.narrow(0, 0, Math.min(n, d.images.size(0))), d.mean, d.std));
  }
  stateDict(): MethodState {
    return { tensors: {}, meta: {} };
  }
  loadStateDict(): void {}
  dispose(): void {}
}

type H = Record<string, number>;
export const DETECT_METHODS: Record<string, { defaults: H; dataFree: boolean; description: string; create: (ctx: DetectDistillContext, h: H) => DetectDistillMethod }> = {
  tgan: { defaults: DETECT_TGAN_DEFAULTS, dataFree: true, description: 'class-conditional transformer generator drawing objects into sampled boxes (layout canvases): teacher set loss + attention compactness + TV + BatchNorm statistics (adversarial optional; --layout 0: whole canvases with confidence, balance, sparsity); 4 student steps on fresh canvases per generator step, pseudo-target NMS, no-object weight 1, label embedding std 1', create: (c, h) => new DetectTgan(c, h) },
  dfad: { defaults: DETECT_DFAD_DEFAULTS, dataFree: true, description: 'DFAD: DCGAN generator maximising the matched teacher–student discrepancy', create: (c, h) => new DetectDfad(c, h) },
  deepinv: { defaults: DETECT_DEEPINV_DEFAULTS, dataFree: true, description: 'direct canvas optimisation towards sampled target boxes (DIODE-style; + BatchNorm statistics with --alpha-bn), image bank', create: (c, h) => new DetectDeepInversion(c, h) },
  kd: { defaults: DETECT_STUDENT_DEFAULTS, dataFree: false, description: 'reference: distillation on the real training canvases (upper bound)', create: (c, h) => new DetectKdReal(c, h) },
};

export function createDetectMethod(name: string, ctx: DetectDistillContext, overrides: H = {}): DetectDistillMethod {
  const m = DETECT_METHODS[name];
  if (!m) throw new Error(`unknown detection method '${name}'; available: ${Object.keys(DETECT_METHODS).join(', ')}`);
  const unknown = Object.keys(overrides).filter((k) => !(k in m.defaults));
  if (unknown.length) throw new Error(`detection method ${name} has no hyper-parameter ${unknown.join(', ')}; it has: ${Object.keys(m.defaults).join(', ')}`);
  return m.create(ctx, overrides);
}

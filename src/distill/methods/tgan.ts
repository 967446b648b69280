// `tgan` — the seed method (Habib et al., 2024, arXiv 2408.05952; METHODS.md): a
// transformer-augmented generator trained adversarially against the student, with the teacher's
// class-attention probe as an attention-consistency term; the student learns KD + CE + a patch-level
// loss (class-attention KL and patch-similarity MSE over matched blocks), with a replay bank.
//
//   L_G     = −KD(T, S; τ) + λ_attn·CE(P_T(x), ŷ) + w_oh·L_oh + w_ie·L_ie [+ w_cr·L_cr]
//   L_total = λ_KD·KD(T, S; τ) + λ_CE·CE(S(x), ŷ) + λ_patch·L_patch
//
// Schedule: one generator step, then k student steps: the fresh batch first, then batches replayed
// from a bank of recent synthetic images (so the student does not forget earlier samples).
//
// --w-cr (off by default; issue 15's diversity add-on, not in the seed paper): CMI's contrastive term
// L_cr (contrastive.ts) on the teacher's features of a random resized crop of each image against its
// view, with the last `crMemoryBatches` batches' features as negatives — new samples pushed away
// from one another and from earlier ones, against the collapse of the generator's distribution.
import { noGrad, randint, type Tensor } from '../../tensor/tensor.js';
import { crossEntropy } from '../../tensor/functional.js';
import { TransformerGenerator } from '../../models/generators.js';
import type { VisionTransformer } from '../../models/vit.js';
import { ImageBank } from '../bank.js';
import { GeneratorTrainer } from '../common.js';
import { ContrastiveTerm, randomResizedCrop } from '../contrastive.js';
import { hparamChecks } from '../hparams.js';
import {
  attentionConsistencyLoss,
  classAttentionProbe,
  informationEntropyLoss,
  kdLoss,
  matchBlocks,
  oneHotLoss,
  patchDistillationLoss,
  totalVariation,
  type TokenOutput,
} from '../losses.js';
import { affineView, randomJitterFlip } from '../augment.js';
import type { DistillContext, DistillMethod, MethodState, StudentLoss, SyntheticBatch } from '../types.js';

// Tuned on the MNIST validation split (teacher teachers/mnist-vit 96.92%, student vit-student-28 from
// weight selection, batch 64, 200 iterations, seed 0, val accuracy at iterations 50/100/150):
//   METHODS.md reading (unconditional, no views)            random init: chance (≈10%) throughout
//   + conditional + views (0.15 zoom, 2 px, 10°)            random init: 11.6% / 13.8% / –
//   + conditional + views                                   weight selection: 31.9 / 51.4 / 57.3 (test at 200: 60.4%)
//   + conditional + views + TV 0.1 (the defaults)           weight selection: 34.2 / 55.0 / 60.4 (test 60.2%)
//   + conditional + stronger views (0.25, 3 px, 15°)        weight selection: 31.5 / 50.4 / 57.3 (test 59.9%)
// The last three are within run-to-run noise of each other; weight selection is what matters.
export const TGAN_DEFAULTS = {
  /** KD temperature (both the adversarial and the student term). */
  tau: 4,
  /** Weight of the attention-consistency term L_attention in L_G. */
  lambdaAttn: 1,
  /** DAFL priors in L_G: one-hot confidence and information entropy (class balance). */
  wOh: 1,
  wIe: 5,
  /** Weight of the adversarial term −KD in L_G (0 turns the GAN into a pure prior-driven generator). */
  wAdv: 1,
  lambdaKD: 1,
  lambdaCE: 0.1,
  /**
   * Off by default (a deviation, measured on MNIST): in the 3-minute ablation the student without it
   * reached 67.6% validation accuracy vs 53.0% with λ_patch = 1, and 20 minutes without it gave the
   * best data-free student (README). It costs a teacher pass returning every block's attention and
   * tokens per student step; `--lambda-patch 1` turns it on.
   */
  lambdaPatch: 0,
  /** Student steps per generator step (METHODS: 1 to 5). */
  studentSteps: 3,
  /** Replay bank capacity, in batches. */
  bankBatches: 20,
  lrG: 1e-3,
  lrS: 1e-3,
  latentDim: 64,
  genDim: 96,
  genDepth: 2,
  genHeads: 4,
  /**
   * Class-conditional generator (a label embedding on every token; L_oh then uses the sampled labels).
   * On: the unconditional generator left whole classes out of its batches (sample grids).
   */
  conditional: true,
  /**
   * Std of the conditional generator's initial label embedding (TransformerGenerator.labelInitStd).
   * At timm's 0.02 (the default) the label is a ~15× smaller nudge than the latent's share of a token,
   * and the generator barely follows it: against the 97.51% MNIST teacher L_oh (CE of the teacher's
   * reading against the requested label) is still 2.4–2.8 nats after 10 minutes (chance: 2.3), and the
   * classes are balanced only through L_ie (the teacher's shares 0.03–0.22 per class). 150-iteration
   * screening without a warm-up: std 1 and 3 followed the labels faster (L_oh 2.5 / 2.2 at iteration 150
   * vs 3.1) but collapsed harder first (2 classes at iteration 50; test 23.7% / 20.3% vs 62.1%).
   */
  labelStd: 0.02,
  /**
   * Convolutional refinement channels after the unpatchify head (0 = METHODS.md's plain linear head).
   * Measured: the plain head leaves 4×4 patch seams that the teacher reads as adversarial texture.
   */
  refineChannels: 16,
  /** Random shifts (±px, circular, as DeepInversion) of every batch the teacher and student see. */
  jitter: 2,
  /** Total-variation prior on the generator's images (natural-image smoothness; damps the stripe textures). */
  wTv: 0.1,
  /**
   * Random affine views (Plug-In Inversion): zoom ±augScale, shift ±augShift px, rotation ±augRotate°
   * per image, in the generator loss and on every student batch; 0/0/0 turns them off.
   */
  augScale: 0.15,
  augShift: 2,
  augRotate: 10,
  /**
   * Generator-only warm-up: the first warmupSteps iterations train the generator alone (the same L_G,
   * against the initial student; their images are not banked), so that the student's first batches
   * are not the initial generator's few-class blobs. 0 = the seed method. They count as iterations.
   * Measured (97.51% MNIST teacher → vit-student-28, 10 min, seeds 0–2, two 1-thread runs side by
   * side): 100 warm-up steps 77.05 ± 8.96% test vs 81.16 ± 4.20% without — seed 0 +3.2, seed 1 −0.3,
   * seed 2 −15 (its generator collapsed during the warm-up itself, against the fixed student). Off.
   */
  warmupSteps: 0,
  /** Weight of CMI's contrastive diversity term in L_G (0 = off, the seed method). */
  wCr: 0,
  /** Its InfoNCE temperature, projection width, memory (batches) and negatives per step (CMI's values). */
  tauCr: 0.1,
  crHeadDim: 128,
  crMemoryBatches: 64,
  crNegatives: 4096,
  /** The smallest area fraction of the local view (a random resized crop; CMI: 0.25). */
  crLocalMinScale: 0.25,
};
export type TganHparams = typeof TGAN_DEFAULTS;

function asViT(model: DistillContext['teacher'], role: string): VisionTransformer {
  const m = model as unknown as Partial<VisionTransformer>;
  if (!m.blocks || !m.head || !m.norm || !(m as { config?: { patchSize?: number } }).config?.patchSize) {
    throw new Error(`tgan needs a ViT ${role} (class attention, patch tokens); use dafl/dfad/zskt for CNNs`);
  }
  return model as unknown as VisionTransformer;
}

export class Tgan implements DistillMethod {
  readonly name = 'tgan';
  readonly studentStepsPerIteration: number;
  readonly studentOptimizer;
  readonly hparams: TganHparams;
  private readonly gen: GeneratorTrainer<TransformerGenerator>;
  private readonly bank: ImageBank;
  private readonly pairs: [number, number][];
  private readonly teacherVit: VisionTransformer;
  /** CMI's contrastive term (--w-cr > 0), else null. */
  private readonly cr: ContrastiveTerm | null;

  constructor(ctx: DistillContext, overrides: Partial<TganHparams> = {}) {
    const h = { ...TGAN_DEFAULTS, ...overrides };
    this.hparams = h;
    const check = hparamChecks('tgan');
    check.nonNegative('wCr', h.wCr);
    check.int('warmupSteps', h.warmupSteps, 0);
    check.positive('labelStd', h.labelStd);
    check.positive('tauCr', h.tauCr);
    for (const k of ['crHeadDim', 'crMemoryBatches', 'crNegatives'] as const) check.int(k, h[k], 1);
    if (!(h.crLocalMinScale > 0 && h.crLocalMinScale <= 1)) throw new RangeError(`tgan: --cr-local-min-scale must be in (0, 1], got ${h.crLocalMinScale}`);
    this.teacherVit = asViT(ctx.teacher, 'teacher');
    const studentVit = asViT(ctx.student, 'student');
    this.studentStepsPerIteration = h.studentSteps;
    this.studentOptimizer = { kind: 'adam' as const, lr: h.lrS };
    const [C, H] = ctx.inputShape;
    const generator = new TransformerGenerator({
      latentDim: h.latentDim,
      imageSize: H,
      channels: C,
      patchSize: this.teacherVit.config.patchSize,
      dim: h.genDim,
      depth: h.genDepth,
      heads: h.genHeads,
      numClasses: h.conditional ? ctx.numClasses : undefined,
      // 0.02 keeps timm's init exactly (truncated at ±2, as every run before the flag)
      labelInitStd: h.labelStd === 0.02 ? undefined : h.labelStd,
      refineChannels: h.refineChannels,
      mean: ctx.mean,
      std: ctx.std,
    });
    this.gen = new GeneratorTrainer(generator, h.latentDim, h.lrG);
    this.bank = new ImageBank(h.bankBatches * ctx.batchSize);
    this.pairs = matchBlocks(this.teacherVit.config.depth, studentVit.config.depth);
    this.cr = h.wCr > 0
      ? new ContrastiveTerm(this.teacherVit.config.dim, { headDim: h.crHeadDim, memory: h.crMemoryBatches * ctx.batchSize, negatives: h.crNegatives, tau: h.tauCr, lr: h.lrG })
      : null;
  }

  /** No student steps during the generator-only warm-up (warmupSteps iterations), then studentSteps. */
  studentStepsAt(iteration: number): number {
    return iteration < this.hparams.warmupSteps ? 0 : this.studentStepsPerIteration;
  }

  synthesize(ctx: DistillContext, iteration: number): SyntheticBatch {
    const { x, labels, logs } = this.generatorStep(ctx);
    // the warm-up's batches train no student and are not replayed later
    if (iteration >= this.hparams.warmupSteps) this.bank.add(x);
    return { x, y: labels, logs };
  }

  /** One generator step on L_G; the batch made (detached) and the step's losses. */
  private generatorStep(ctx: DistillContext): { x: Tensor; labels: Tensor | undefined; logs: Record<string, number> } {
    const h = this.hparams;
    const z = this.gen.latent(ctx.batchSize);
    const labels = h.conditional ? randint(0, ctx.numClasses, [ctx.batchSize]) : undefined;
    const x = this.gen.generator.forward(z, labels);
    const xa = this.view(x, ctx);
    const tOut = ctx.teacher.forward(xa, { returnAttention: true, returnTokens: true });
    const sOut = ctx.student.forward(xa);
    const adv = kdLoss(tOut.logits, sOut.logits, h.tau, { teacherGrad: true });
    const probe = classAttentionProbe(this.teacherVit, tOut as unknown as TokenOutput);
    const attn = attentionConsistencyLoss(probe, tOut.logits);
    const oh = labels ? crossEntropy(tOut.logits, labels) : oneHotLoss(tOut.logits);
    const ie = informationEntropyLoss(tOut.logits);
    let lossG = adv.mul(-h.wAdv).add(attn.mul(h.lambdaAttn)).add(oh.mul(h.wOh)).add(ie.mul(h.wIe));
    if (h.wTv > 0) lossG = lossG.add(totalVariation(x, 'l2').mul(h.wTv));
    let cr: Tensor | null = null;
    if (this.cr) {
      const local = ctx.teacher.forward(randomResizedCrop(x, { minScale: h.crLocalMinScale })).feature;
      cr = this.cr.loss(local, tOut.feature);
      lossG = lossG.add(cr.mul(h.wCr));
      this.cr.opt.zeroGrad();
    }
    this.gen.step(lossG, ctx);
    if (this.cr) {
      this.cr.opt.step();
      this.cr.remember(tOut.feature);
    }
    const logs: Record<string, number> = { 'G/adv': adv.item(), 'G/attn': attn.item(), 'G/oh': oh.item(), 'G/ie': ie.item(), 'G/total': lossG.item() };
    if (cr) logs['G/cr'] = cr.item();
    return { x: x.detach(), labels, logs };
  }

  studentBatch(ctx: DistillContext, fresh: SyntheticBatch, k: number): SyntheticBatch {
    const b = k === 0 || this.bank.size < 2 * ctx.batchSize ? fresh : { x: this.bank.sample(ctx.batchSize), logs: {} };
    return { ...b, x: this.view(b.x, ctx) };
  }

  /** A random view of a batch: affine (if on), then DeepInversion's jitter (if on). */
  private view(x: Tensor, ctx: DistillContext): Tensor {
    const h = this.hparams;
    const v = affineView(x, h, ctx);
    return h.jitter > 0 ? randomJitterFlip(v, h.jitter, 0) : v;
  }

  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    const h = this.hparams;
    const needPatch = h.lambdaPatch > 0;
    const tOut = noGrad(() => ctx.teacher.forward(batch.x, { returnAttention: needPatch, returnTokens: needPatch }));
    const sOut = ctx.student.forward(batch.x, { returnAttention: needPatch, returnTokens: needPatch });
    const kd = kdLoss(tOut.logits, sOut.logits, h.tau);
    let loss = kd.mul(h.lambdaKD);
    const logs: Record<string, number> = { 'S/kd': kd.item() };
    if (h.lambdaCE > 0) {
      // ŷ = the teacher's decision on this view (METHODS.md), not the conditional generator's label.
      const ce = crossEntropy(sOut.logits, tOut.logits.argmax(1));
      loss = loss.add(ce.mul(h.lambdaCE));
      logs['S/ce'] = ce.item();
    }
    if (needPatch) {
      const patch = patchDistillationLoss(tOut as unknown as TokenOutput, sOut as unknown as TokenOutput, this.pairs);
      loss = loss.add(patch.mul(h.lambdaPatch));
      logs['S/patch'] = patch.item();
    }
    return { loss, logs };
  }

  previewBatch(ctx: DistillContext, n: number): Tensor {
    const labels = this.hparams.conditional ? randint(0, ctx.numClasses, [n]) : undefined;
    return this.gen.preview(n, labels);
  }

  stateDict(): MethodState {
    const g = this.gen.stateDict();
    const b = this.bank.stateDict();
    const c = this.cr?.stateDict('cr.');
    return { tensors: { ...g.tensors, ...b, ...c?.tensors }, meta: { ...g.meta, ...c?.meta } };
  }

  loadStateDict(state: MethodState): void {
    this.gen.loadStateDict(state);
    this.bank.loadStateDict(state.tensors);
    this.cr?.loadStateDict(state, 'cr.');
  }

  dispose(): void {
    this.gen.dispose();
    this.bank.dispose();
    this.cr?.dispose();
  }
}

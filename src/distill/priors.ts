// The image priors the inversion-style methods (deepinv, cmi, fast, nayer) put on a synthetic batch,
// chosen by the teacher's family, written once:
//   CNN with BatchNorm (the CIFAR ResNets): DeepInversion's R_feature = Σ_l ‖μ_l(x) − μ_BN‖ + ‖σ²_l(x) − σ²_BN‖
//     over every BatchNorm2d's input — what CMI, Fast and NAYER use (their `bn` weight);
//   ViT: PSAQ-ViT's patch-similarity prior R_ps over the blocks' tokens (a ViT has no BN statistics);
//   CNN without BatchNorm (LeNet-5): neither exists; the methods then rely on their other terms.
import type { Tensor } from '../tensor/tensor.js';
import { BatchNorm2d } from '../nn/layers.js';
import type { Classifier, ClassifierOutput } from '../models/types.js';
import { patchSimilarityPrior, withBatchNormPrior } from './losses.js';

export type PriorKind = 'bn' | 'ps' | 'none';

/** True for a ViT-like classifier (blocks of patch tokens). */
export function isVit(model: Classifier): boolean {
  const m = model as unknown as { blocks?: unknown; config?: { patchSize?: number } };
  return Boolean(m.blocks && m.config?.patchSize);
}

/** Every BatchNorm2d of a model, in module order. */
export function batchNorms(model: Classifier): BatchNorm2d[] {
  return model.namedModules().map(([, m]) => m).filter((m): m is BatchNorm2d => m instanceof BatchNorm2d);
}

/** Which prior a teacher supports: BN statistics where it has BatchNorm, the patch prior for a ViT. */
export function priorKind(teacher: Classifier): PriorKind {
  if (batchNorms(teacher).length > 0) return 'bn';
  return isVit(teacher) ? 'ps' : 'none';
}

/**
 * The teacher's forward on x (with grad to x) and its image prior: R_feature for a BN teacher, R_ps
 * for a ViT when `psSamplePoints` is given (its KDE costs a block-token pass; 32 grid points, as
 * deepinv), null otherwise. `norms` is batchNorms(teacher), cached by the caller.
 */
export function teacherForwardWithPrior(
  teacher: Classifier,
  x: Tensor,
  o: { kind: PriorKind; norms: readonly BatchNorm2d[]; psSamplePoints?: number },
): { out: ClassifierOutput; prior: Tensor | null } {
  if (o.kind === 'bn') return withBatchNormPrior(o.norms, () => teacher.forward(x));
  if (o.kind === 'ps' && o.psSamplePoints !== undefined) {
    const out = teacher.forward(x, { returnTokens: true });
    const t = out as unknown as { tokens: Tensor[]; numPrefix: number };
    return { out, prior: patchSimilarityPrior(t.tokens, t.numPrefix, { samplePoints: o.psSamplePoints }) };
  }
  return { out: teacher.forward(x), prior: null };
}

// The detection distillation objectives of METHODS.md ("Detection — DETR teacher → smaller DETR
// student, data-free"), written once for every detection method:
// - pseudo-targets: the teacher's queries whose best object class has probability > θ;
// - the student's loss: the DETR Hungarian set loss against the pseudo-targets (all decoder layers)
//   + KD on the class distributions (C + 1) of matched (student query, teacher query) pairs. The
//   "L1 + GIoU on the boxes of matched pairs" of METHODS.md is exactly the set loss's box terms
//   against the pseudo-target boxes (the teacher's), so it is not added a second time;
// - the generator's terms: an adversarial discrepancy on matched pairs (differentiable through both
//   networks), confidence of the teacher's top-k queries, class balance of those queries (DAFL's
//   L_ie) and compactness of their decoder cross-attention.
import { klDiv, l1Loss } from '../../tensor/functional.js';
import { arange, noGrad, tensor, tidy, type Tensor } from '../../tensor/tensor.js';
import { informationEntropyLoss } from '../../distill/losses.js';
import { boxCxcywhToXyxy, cxcywhToXyxy, iouXyxy, pairedGiou, type Box4 } from '../boxes.js';
import { DETR_LOSS_DEFAULTS, detrSetLoss, hungarianMatch, type DetectionTarget, type ImageMatch, type SetLossWeights } from '../loss.js';
import type { DenseTokenHead } from '../dense.js';
import type { Linear } from '../../nn/layers.js';

/** What the objectives read of a DETR forward pass. */
export interface DetrForward {
  logits: Tensor;
  boxes: Tensor;
  aux: { logits: Tensor; boxes: Tensor }[];
  crossAttentions?: Tensor[];
  encoderTokens?: Tensor;
}

export interface PseudoTargets {
  targets: DetectionTarget[];
  /** Per image, the teacher query behind each pseudo-target. */
  teacherQueries: number[][];
}

/**
 * The teacher's confident detections (best object-class probability > θ) as DETR targets. With
 * nmsIou < 1, class-agnostic greedy NMS among them (highest probability first): a detection whose
 * box overlaps a kept one with IoU > nmsIou is dropped. Why: the teacher often puts two confident
 * queries on one object (measured on the shipped teacher at θ 0.5: 0.46 pairs with IoU > 0.5 per real
 * validation canvas, 0.57 per generated one), and a student matched to both learns to fire several
 * queries per object — the 60-minute tgan student made 6.8 detections above 0.5 per validation canvas
 * for 2.5 objects. Targets keep the teacher's query order.
 */
export function pseudoTargets(teacherLogits: Tensor, teacherBoxes: Tensor, threshold: number, nmsIou = 1): PseudoTargets {
  const [B, Q, C1] = teacherLogits.shape as [number, number, number];
  const [p, c, b] = noGrad(() =>
    tidy(() => {
      const { values, indices } = teacherLogits.detach().softmax(-1).narrow(-1, 0, C1 - 1).maxDim(-1);
      return [values.float().data() as Float32Array, indices.toArray(), teacherBoxes.detach().float().data() as Float32Array];
    }),
  );
  const box = (k: number): Box4 => [b![4 * k]!, b![4 * k + 1]!, b![4 * k + 2]!, b![4 * k + 3]!];
  const targets: DetectionTarget[] = [];
  const teacherQueries: number[][] = [];
  for (let i = 0; i < B; i++) {
    let qs: number[] = [];
    for (let q = 0; q < Q; q++) if (p![i * Q + q]! > threshold) qs.push(q);
    if (nmsIou < 1 && qs.length > 1) {
      const kept: number[] = [];
      for (const q of [...qs].sort((u, v) => p![i * Q + v]! - p![i * Q + u]!)) {
        const bq = cxcywhToXyxy(box(i * Q + q));
        if (kept.every((k) => iouXyxy(cxcywhToXyxy(box(i * Q + k)), bq) <= nmsIou)) kept.push(q);
      }
      qs = kept.sort((u, v) => u - v);
    }
    targets.push({ labels: qs.map((q) => c![i * Q + q]!), boxes: qs.map((q) => box(i * Q + q)) });
    teacherQueries.push(qs);
  }
  return { targets, teacherQueries };
}

/** Flat indices (b·Q + q) of matched student queries and the teacher queries they were matched to. */
export function matchedPairs(matches: readonly ImageMatch[], teacherQueries: readonly number[][], Qs: number, Qt: number): { student: number[]; teacher: number[] } {
  const student: number[] = [];
  const teacher: number[] = [];
  matches.forEach((m, b) => {
    m.queries.forEach((q, k) => {
      student.push(b * Qs + q);
      teacher.push(b * Qt + teacherQueries[b]![m.targets[k]!]!);
    });
  });
  return { student, teacher };
}

/** τ²·KL(σ(t/τ) ‖ σ(s/τ)) over the last dim, averaged over rows (rows: matched query pairs). */
function pairKD(t: Tensor, s: Tensor, tau: number): Tensor {
  return tidy(() => klDiv(s.div(tau).logSoftmax(-1), t.div(tau).logSoftmax(-1), 'batchmean', true).mul(tau * tau));
}

const gatherRows = (x: Tensor, idx: number[]): Tensor => x.reshape([-1, x.size(-1)]).indexSelect(0, tensor(idx, { dtype: 'int64' }));

export interface StudentDistillOptions {
  threshold: number;
  /** Class-agnostic NMS IoU among the pseudo-targets (pseudoTargets); 1 = off. */
  nmsIou?: number;
  tau: number;
  kdWeight: number;
  setWeight: number;
  /** Weight of the dense token loss (dense.ts) against the pseudo-targets; 0 = off. */
  denseWeight?: number;
  /** Weight of the encoder feature loss (featureDistillLoss); 0 = off. */
  featWeight?: number;
  loss?: SetLossWeights;
}

/**
 * The student's loss on a batch given the teacher's outputs (constants): set loss against the
 * pseudo-targets + KD on matched pairs. Logs: S/set, S/kd, S/ce, S/l1, S/giou, S/objects.
 */
export function studentDetectionLoss(teacher: DetrForward, student: DetrForward, o: StudentDistillOptions, dense?: DenseTokenHead | null, adapter?: Linear | null): { loss: Tensor; logs: Record<string, number> } {
  return tidy(() => {
    const { targets, teacherQueries } = pseudoTargets(teacher.logits, teacher.boxes, o.threshold, o.nmsIou ?? 1);
    const set = detrSetLoss(student, targets, o.loss ?? DETR_LOSS_DEFAULTS);
    const pairs = matchedPairs(set.matches, teacherQueries, student.logits.size(1), teacher.logits.size(1));
    let loss = set.loss.mul(o.setWeight);
    let kdValue = 0;
    if (pairs.student.length > 0 && o.kdWeight > 0) {
      const kd = pairKD(gatherRows(teacher.logits.detach(), pairs.teacher), gatherRows(student.logits, pairs.student), o.tau);
      loss = loss.add(kd.mul(o.kdWeight));
      kdValue = kd.item();
    }
    const objects = targets.reduce((s, t) => s + t.labels.length, 0) / Math.max(1, targets.length);
    const logs: Record<string, number> = { 'S/set': set.loss.item(), 'S/kd': kdValue, 'S/ce': set.final.ce.item(), 'S/l1': set.final.l1.item(), 'S/giou': set.final.giou.item(), 'S/objects': objects };
    if (dense && (o.denseWeight ?? 0) > 0 && student.encoderTokens) {
      // The supervised recipe's dense token loss (dense.ts), against the teacher's pseudo-targets.
      const d = dense.loss(student.encoderTokens, targets);
      loss = loss.add(d.mul(o.denseWeight!));
      logs['S/dense'] = d.item();
    }
    if (adapter && (o.featWeight ?? 0) > 0 && student.encoderTokens && teacher.encoderTokens) {
      const f = featureDistillLoss(student.encoderTokens, teacher.encoderTokens, adapter);
      loss = loss.add(f.mul(o.featWeight!));
      logs['S/feat'] = f.item();
    }
    return { loss, logs };
  });
}

/**
 * Encoder feature distillation: MSE between the student's encoder tokens [B, N, d] mapped by a
 * training-only linear adapter (d → D) and the teacher's [B, N, D] (a constant), divided by the
 * teacher tokens' mean square so the weight does not depend on their scale. Every token of every
 * canvas carries signal, where the set loss has only the few confident detections (FitNets' hint
 * loss on the encoder output, as DETR distillers such as DETRDistill add to the logit terms).
 */
export function featureDistillLoss(studentTokens: Tensor, teacherTokens: Tensor, adapter: Linear): Tensor {
  return tidy(() => {
    if (studentTokens.size(1) !== teacherTokens.size(1)) throw new Error(`feature distillation: the student has ${studentTokens.size(1)} encoder tokens, the teacher ${teacherTokens.size(1)}`);
    const t = teacherTokens.detach();
    return adapter.forward(studentTokens).sub(t).square().mean().div(t.square().mean().add(1e-8));
  });
}

/**
 * The discrepancy the generator maximises (differentiable through teacher and student): on the
 * pairs of the student's Hungarian matching to the teacher's confident queries, KD(τ) of the class
 * distributions + L1 + (1 − GIoU) of the boxes. 0 when the teacher is confident about nothing.
 */
export function matchedDiscrepancy(teacher: DetrForward, student: DetrForward, o: { threshold: number; tau: number; loss?: SetLossWeights }): Tensor {
  return tidy(() => {
    const { targets, teacherQueries } = pseudoTargets(teacher.logits, teacher.boxes, o.threshold);
    const matches = hungarianMatch(student, targets, o.loss ?? DETR_LOSS_DEFAULTS);
    const pairs = matchedPairs(matches, teacherQueries, student.logits.size(1), teacher.logits.size(1));
    if (pairs.student.length === 0) return teacher.logits.sum().add(student.logits.sum()).mul(0);
    const kd = pairKD(gatherRows(teacher.logits, pairs.teacher), gatherRows(student.logits, pairs.student), o.tau);
    const tb = gatherRows(teacher.boxes, pairs.teacher);
    const sb = gatherRows(student.boxes, pairs.student);
    const l1 = l1Loss(sb, tb, 'mean').mul(4); // per box, as the set loss's sum over coordinates
    const giou = pairedGiou(boxCxcywhToXyxy(sb), boxCxcywhToXyxy(tb)).rsub(1).mean();
    return kd.add(l1).add(giou);
  });
}

/** Indices [B, k] of each image's k queries with the highest object probability (no grad). */
export function topQueries(logits: Tensor, k: number): Tensor {
  const [, Q, C1] = logits.shape as [number, number, number];
  if (!(k >= 1 && k <= Q)) throw new RangeError(`topQueries: k must be in 1..${Q}, got ${k}`);
  return noGrad(() => tidy(() => logits.softmax(-1).narrow(-1, 0, C1 - 1).amax(-1).topk(k, -1).indices));
}

/** Rows [B, k, ...] of x [B, Q, ...] at idx [B, k]. */
function takeQueries(x: Tensor, idx: Tensor): Tensor {
  return tidy(() => {
    const [B, Q] = x.shape as [number, number];
    const k = idx.size(1);
    const flat = idx.add(arange(0, B, 1, { dtype: 'int64' }).mul(Q).unsqueeze(1)).reshape([B * k]);
    return x.reshape([B * Q, ...x.shape.slice(2)]).indexSelect(0, flat).reshape([B, k, ...x.shape.slice(2)]);
  });
}

/**
 * Confidence of the teacher's top-k queries: mean over them of −log p(c*), c* their best object
 * class — DAFL's one-hot loss per query. Low only when those queries are confidently an object
 * (the entropy over C + 1 classes alone is also low for a confident "no object", so we use this form).
 */
export function queryConfidenceLoss(teacherLogits: Tensor, k: number): Tensor {
  return tidy(() => {
    const C1 = teacherLogits.size(-1);
    const sel = takeQueries(teacherLogits, topQueries(teacherLogits, k)).reshape([-1, C1]);
    const logp = sel.logSoftmax(-1).narrow(-1, 0, C1 - 1);
    return logp.amax(-1).neg().mean();
  });
}

/**
 * Sparsity of the teacher's detections: mean over the queries outside the top-k of their object
 * probability 1 − p(no object). With the confidence term alone a generator makes every query fire (a
 * texture of objects, measured: 12 of 12 queries above θ); real canvases hold a few objects.
 */
export function queryExcessLoss(teacherLogits: Tensor, k: number): Tensor {
  return tidy(() => {
    const [B, Q, C1] = teacherLogits.shape as [number, number, number];
    if (k >= Q) return teacherLogits.sum().mul(0);
    const pObj = teacherLogits.softmax(-1).select(-1, C1 - 1).rsub(1); // [B, Q]
    const top = topQueries(teacherLogits, k);
    const mask = noGrad(() => pObj.detach().mul(0).scatter(1, top, 1).rsub(1)); // 1 outside the top-k
    return pObj.mul(mask).sum().div(B * (Q - k));
  });
}

/** DAFL's L_ie over the object classes of the teacher's top-k queries: −H(mean class distribution). */
export function queryBalanceLoss(teacherLogits: Tensor, k: number): Tensor {
  return tidy(() => {
    const C1 = teacherLogits.size(-1);
    const sel = takeQueries(teacherLogits, topQueries(teacherLogits, k)).reshape([-1, C1]).narrow(-1, 0, C1 - 1);
    return informationEntropyLoss(sel);
  });
}

/**
 * Compactness of the cross-attention of the teacher's top-k queries (last decoder layer): the
 * spatial variance Σ_i a_i·‖p_i − μ‖² of the attention distribution over the g×g patch grid (p_i the
 * patch centres in [0, 1]², μ = Σ a_i p_i). Low when each confident query looks at one compact region.
 */
export function attentionCompactnessLoss(crossAttention: Tensor, teacherLogits: Tensor, k: number): Tensor {
  return tidy(() => {
    const N = crossAttention.size(-1);
    const g = Math.round(Math.sqrt(N));
    if (g * g !== N) throw new Error(`attentionCompactnessLoss: ${N} keys is not a square patch grid`);
    const a = takeQueries(crossAttention, topQueries(teacherLogits, k)); // [B, k, N]
    const coord = arange(0, g, 1, { dtype: a.dtype }).add(0.5).div(g);
    const xs = coord.repeat([g]); // x varies fastest (row-major patches)
    const ys = coord.unsqueeze(1).expand([g, g]).reshape([N]);
    const mx = a.mul(xs).sum(-1, true);
    const my = a.mul(ys).sum(-1, true);
    const v = a.mul(xs.sub(mx).square().add(ys.sub(my).square())).sum(-1);
    return v.mean();
  });
}

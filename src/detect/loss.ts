// The DETR set loss (Carion et al., ECCV 2020; METHODS.md's detection section): per image, a
// Hungarian matching of the Q predictions to the ground-truth objects with cost
//   costClass·(−p̂(c)) + costBbox·‖b̂ − b‖₁ + costGiou·(−GIoU(b̂, b)),
// then CE over all queries (unmatched ones → the "no object" class, weighted eosCoef) +
// weightBbox·L1 + weightGiou·(1 − GIoU) over the matched pairs (normalised by the number of objects),
// summed over the final decoder layer and every auxiliary (intermediate) layer.
import { crossEntropy, l1Loss } from '../tensor/functional.js';
import { noGrad, ones, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { boxCxcywhToXyxy, generalizedBoxIou, pairedGiou, type Box4 } from './boxes.js';
import { linearSumAssignment } from './matching.js';

/** The objects of one image: class indices in [0, C) and cxcywh boxes normalised to [0, 1]. */
export interface DetectionTarget {
  labels: number[];
  boxes: Box4[];
}

/** One decoder layer's predictions: logits [B, Q, C + 1] (last = no object), cxcywh boxes [B, Q, 4]. */
export interface DetectionPrediction {
  logits: Tensor;
  boxes: Tensor;
}

export interface SetLossWeights {
  costClass: number;
  costBbox: number;
  costGiou: number;
  /** Relative CE weight of the "no object" class (DETR's eos_coef). */
  eosCoef: number;
  weightCe: number;
  weightBbox: number;
  weightGiou: number;
}

/** DETR's defaults (main.py: set_cost_class 1, set_cost_bbox 5, set_cost_giou 2, eos_coef 0.1, bbox 5, giou 2). */
export const DETR_LOSS_DEFAULTS: SetLossWeights = { costClass: 1, costBbox: 5, costGiou: 2, eosCoef: 0.1, weightCe: 1, weightBbox: 5, weightGiou: 2 };

/** Per image: matched query indices and the indices of the targets they are matched to. */
export interface ImageMatch {
  queries: number[];
  targets: number[];
}

function checkPrediction(p: DetectionPrediction, B: number): void {
  const l = p.logits.shape;
  const b = p.boxes.shape;
  if (l.length !== 3 || b.length !== 3 || b[2] !== 4 || l[0] !== b[0] || l[1] !== b[1]) {
    throw new Error(`DETR loss: expected logits [B, Q, C+1] and boxes [B, Q, 4], got [${l.join(', ')}] and [${b.join(', ')}]`);
  }
  if (l[0] !== B) throw new Error(`DETR loss: ${B} targets for a batch of ${l[0]}`);
}

function checkTargets(targets: readonly DetectionTarget[], numClasses: number): void {
  for (const [i, t] of targets.entries()) {
    if (t.labels.length !== t.boxes.length) throw new Error(`DETR loss: image ${i} has ${t.labels.length} labels but ${t.boxes.length} boxes`);
    for (const c of t.labels) {
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new Error(`DETR loss: image ${i} has label ${c}, outside 0..${numClasses - 1}`);
    }
  }
}

/**
 * The Hungarian matching of DETR's HungarianMatcher (no gradient): for each image, the assignment of
 * queries to targets of least cost. Every target is matched when Q ≥ its object count.
 */
export function hungarianMatch(pred: DetectionPrediction, targets: readonly DetectionTarget[], w: Pick<SetLossWeights, 'costClass' | 'costBbox' | 'costGiou'> = DETR_LOSS_DEFAULTS): ImageMatch[] {
  const [B, Q, C1] = pred.logits.shape as [number, number, number];
  checkPrediction(pred, targets.length);
  checkTargets(targets, C1 - 1);
  const labels = targets.flatMap((t) => t.labels);
  const T = labels.length;
  if (T === 0) return targets.map(() => ({ queries: [], targets: [] }));
  const cost = noGrad(() =>
    tidy(() => {
      const prob = pred.logits.detach().reshape([B * Q, C1]).softmax(-1);
      const outBoxes = pred.boxes.detach().reshape([B * Q, 4]);
      const tgtBoxes = tensor(targets.flatMap((t) => t.boxes.flatMap((b) => [...b])), { shape: [T, 4], dtype: outBoxes.dtype });
      const ids = tensor(labels, { dtype: 'int64' });
      const cClass = prob.indexSelect(1, ids).neg();
      const cBbox = outBoxes.unsqueeze(1).sub(tgtBoxes.unsqueeze(0)).abs().sum(-1);
      const cGiou = generalizedBoxIou(boxCxcywhToXyxy(outBoxes), boxCxcywhToXyxy(tgtBoxes)).neg();
      return cClass.mul(w.costClass).add(cBbox.mul(w.costBbox)).add(cGiou.mul(w.costGiou)).double();
    }),
  );
  const all = cost.data() as Float64Array; // [B·Q, T]
  cost.dispose();
  const out: ImageMatch[] = [];
  let col0 = 0;
  for (let b = 0; b < B; b++) {
    const n = targets[b]!.labels.length;
    const sub = new Float64Array(Q * n);
    for (let q = 0; q < Q; q++) for (let j = 0; j < n; j++) sub[q * n + j] = all[(b * Q + q) * T + col0 + j]!;
    const a = linearSumAssignment(sub, Q, n);
    out.push({ queries: a.rows, targets: a.cols });
    col0 += n;
  }
  return out;
}

export interface SetLossParts {
  ce: Tensor;
  l1: Tensor;
  giou: Tensor;
  /** weightCe·ce + weightBbox·l1 + weightGiou·giou */
  total: Tensor;
}

/** The loss of one decoder layer given its matching. */
export function setLossGivenMatch(
  pred: DetectionPrediction,
  targets: readonly DetectionTarget[],
  matches: readonly ImageMatch[],
  w: SetLossWeights = DETR_LOSS_DEFAULTS,
): SetLossParts {
  const [B, Q, C1] = pred.logits.shape as [number, number, number];
  checkPrediction(pred, targets.length);
  return tidy(() => {
    const cls = new BigInt64Array(B * Q).fill(BigInt(C1 - 1));
    const flatIdx: number[] = [];
    const tgtBoxes: number[] = [];
    for (let b = 0; b < B; b++) {
      const m = matches[b]!;
      for (let k = 0; k < m.queries.length; k++) {
        const q = m.queries[k]!;
        const j = m.targets[k]!;
        cls[b * Q + q] = BigInt(targets[b]!.labels[j]!);
        flatIdx.push(b * Q + q);
        tgtBoxes.push(...targets[b]!.boxes[j]!);
      }
    }
    const numBoxes = Math.max(targets.reduce((s, t) => s + t.labels.length, 0), 1);
    const weight = ones([C1], { dtype: pred.logits.dtype });
    noGrad(() => weight.select(0, C1 - 1).fill_(w.eosCoef));
    const ce = crossEntropy(pred.logits.reshape([B * Q, C1]), tensor(cls, { shape: [B * Q] }), { weight });
    let l1: Tensor;
    let giou: Tensor;
    if (flatIdx.length === 0) {
      l1 = pred.boxes.sum().mul(0);
      giou = pred.boxes.sum().mul(0);
    } else {
      const src = pred.boxes.reshape([B * Q, 4]).indexSelect(0, tensor(flatIdx, { dtype: 'int64' }));
      const tgt = tensor(tgtBoxes, { shape: [flatIdx.length, 4], dtype: src.dtype });
      l1 = l1Loss(src, tgt, 'sum').div(numBoxes);
      giou = pairedGiou(boxCxcywhToXyxy(src), boxCxcywhToXyxy(tgt)).rsub(1).sum().div(numBoxes);
    }
    const total = ce.mul(w.weightCe).add(l1.mul(w.weightBbox)).add(giou.mul(w.weightGiou));
    return { ce, l1, giou, total };
  });
}

export interface SetLossResult {
  /** Sum over the final and the auxiliary layers. */
  loss: Tensor;
  /** The final layer's parts and matching. */
  final: SetLossParts;
  matches: ImageMatch[];
}

/** DETR's SetCriterion: the matched loss of the final layer plus every auxiliary layer (each matched on its own). */
export function detrSetLoss(
  pred: DetectionPrediction & { aux?: DetectionPrediction[] },
  targets: readonly DetectionTarget[],
  w: SetLossWeights = DETR_LOSS_DEFAULTS,
): SetLossResult {
  return tidy(() => {
    const matches = hungarianMatch(pred, targets, w);
    const final = setLossGivenMatch(pred, targets, matches, w);
    let loss = final.total;
    for (const a of pred.aux ?? []) loss = loss.add(setLossGivenMatch(a, targets, hungarianMatch(a, targets, w), w).total);
    return { loss, final, matches };
  });
}

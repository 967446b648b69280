// COCO-style detection metrics with COCOeval's semantics (pycocotools cocoeval.py, iouType 'bbox'):
// - per (image, category): detections sorted by score (stable), the first maxDets kept; for each IoU
//   threshold, each detection in score order takes the unmatched ground truth of highest IoU ≥ t
//   (ties → the later one, as cocoeval's `if ious < iou: continue`), otherwise it is a false positive;
// - per category: all images' kept detections sorted by score (stable, image order first), cumulative
//   TP/FP, recall = TP / #GT, precision made monotone from the right, read at 101 recall points
//   (searchsorted 'left'; 0 past the last recall reached);
// - AP of a category = mean over the 10 thresholds .50:.05:.95 and the 101 points; mAP = mean over
//   categories that have ground truth (categories without any are left out, as cocoeval's −1).
// Simplifications, said here: one area range ('all'), no crowd annotations (iscrowd is always 0).
import { iouXyxy, type Box4 } from './boxes.js';

export interface GroundTruthBox {
  imageId: number;
  category: number;
  /** xyxy */
  box: Box4;
}

export interface DetectionBox extends GroundTruthBox {
  score: number;
}

/** numpy.linspace(.5, .95, 10) bit for bit (start + i·step), as cocoeval's iouThrs. */
export const COCO_IOU_THRESHOLDS: readonly number[] = (() => {
  const step = (0.95 - 0.5) / 9;
  return Array.from({ length: 10 }, (_, i) => (i === 9 ? 0.95 : 0.5 + i * step));
})();
/** numpy.linspace(0, 1, 101), as cocoeval's recThrs. */
export const COCO_RECALL_POINTS: readonly number[] = Array.from({ length: 101 }, (_, i) => (i === 100 ? 1 : i * (1 / 100)));

export interface ClassAP {
  category: number;
  /** AP@[.5:.95]; null when the category has no ground truth. */
  ap: number | null;
  ap50: number | null;
  ap75: number | null;
  numGt: number;
  numDet: number;
}

export interface MapResult {
  /** mAP@[.5:.95] over categories with ground truth (COCO's stats[0]). */
  map: number;
  ap50: number;
  ap75: number;
  perClass: ClassAP[];
  /** AP per IoU threshold (averaged over categories). */
  apPerThreshold: number[];
}

export interface MapOptions {
  /** Categories to evaluate (default: every category seen in the ground truth or the detections). */
  categories?: readonly number[];
  /** Detections kept per image and category (COCOeval's maxDets; 100). */
  maxDets?: number;
  iouThresholds?: readonly number[];
}

/** Stable sort of indices by descending score (numpy's argsort(−s, kind='mergesort')). */
function byScoreDesc(scores: readonly number[]): number[] {
  return scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
}

/**
 * COCO's bbox mAP@[.5:.95], AP50, AP75 and per-class AP of `detections` against `groundTruth`
 * (both in the same coordinates; IoU is scale-free).
 */
export function evaluateDetections(groundTruth: readonly GroundTruthBox[], detections: readonly DetectionBox[], o: MapOptions = {}): MapResult {
  const maxDets = o.maxDets ?? 100;
  const thr = o.iouThresholds ?? COCO_IOU_THRESHOLDS;
  const T = thr.length;
  for (const d of detections) {
    if (!Number.isFinite(d.score)) throw new Error(`evaluateDetections: detection on image ${d.imageId} has score ${d.score}`);
  }
  const categories = o.categories ?? [...new Set([...groundTruth.map((g) => g.category), ...detections.map((d) => d.category)])].sort((a, b) => a - b);
  const imageIds = [...new Set([...groundTruth.map((g) => g.imageId), ...detections.map((d) => d.imageId)])].sort((a, b) => a - b);
  const key = (img: number, cat: number): string => `${img}/${cat}`;
  const gtBy = new Map<string, GroundTruthBox[]>();
  const dtBy = new Map<string, DetectionBox[]>();
  for (const g of groundTruth) (gtBy.get(key(g.imageId, g.category)) ?? gtBy.set(key(g.imageId, g.category), []).get(key(g.imageId, g.category))!).push(g);
  for (const d of detections) (dtBy.get(key(d.imageId, d.category)) ?? dtBy.set(key(d.imageId, d.category), []).get(key(d.imageId, d.category))!).push(d);

  const perClass: ClassAP[] = [];
  const apPerThresholdSum = new Array<number>(T).fill(0);
  let counted = 0;
  for (const cat of categories) {
    const scores: number[] = [];
    const matched: boolean[][] = Array.from({ length: T }, () => []); // [t][detection in concat order]
    let numGt = 0;
    for (const img of imageIds) {
      const gts = gtBy.get(key(img, cat)) ?? [];
      const dtsAll = dtBy.get(key(img, cat)) ?? [];
      numGt += gts.length;
      const order = byScoreDesc(dtsAll.map((d) => d.score)).slice(0, maxDets);
      const dts = order.map((i) => dtsAll[i]!);
      const ious = dts.map((d) => gts.map((g) => iouXyxy(d.box, g.box)));
      for (let t = 0; t < T; t++) {
        const gtTaken = new Array<boolean>(gts.length).fill(false);
        for (let di = 0; di < dts.length; di++) {
          let best = Math.min(thr[t]!, 1 - 1e-10);
          let m = -1;
          for (let gi = 0; gi < gts.length; gi++) {
            if (gtTaken[gi]) continue;
            if (ious[di]![gi]! < best) continue;
            best = ious[di]![gi]!;
            m = gi;
          }
          if (m >= 0) gtTaken[m] = true;
          matched[t]!.push(m >= 0);
        }
      }
      for (const d of dts) scores.push(d.score);
    }
    if (numGt === 0) {
      perClass.push({ category: cat, ap: null, ap50: null, ap75: null, numGt, numDet: scores.length });
      continue;
    }
    const order = byScoreDesc(scores);
    const apT: number[] = [];
    for (let t = 0; t < T; t++) {
      const n = order.length;
      const rc = new Float64Array(n);
      const pr = new Float64Array(n);
      let tp = 0;
      let fp = 0;
      for (let k = 0; k < n; k++) {
        if (matched[t]![order[k]!]) tp++;
        else fp++;
        rc[k] = tp / numGt;
        pr[k] = tp / (fp + tp + Number.EPSILON);
      }
      for (let k = n - 1; k > 0; k--) if (pr[k]! > pr[k - 1]!) pr[k - 1] = pr[k]!;
      let sum = 0;
      let k = 0;
      for (const r of COCO_RECALL_POINTS) {
        while (k < n && rc[k]! < r) k++; // searchsorted(rc, r, side='left')
        if (k < n) sum += pr[k]!;
      }
      apT.push(sum / COCO_RECALL_POINTS.length);
    }
    const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
    const i50 = thr.findIndex((x) => Math.abs(x - 0.5) < 1e-9);
    const i75 = thr.findIndex((x) => Math.abs(x - 0.75) < 1e-9);
    perClass.push({ category: cat, ap: mean(apT), ap50: i50 >= 0 ? apT[i50]! : null, ap75: i75 >= 0 ? apT[i75]! : null, numGt, numDet: scores.length });
    for (let t = 0; t < T; t++) apPerThresholdSum[t] += apT[t]!;
    counted++;
  }
  const apPerThreshold = apPerThresholdSum.map((s) => (counted > 0 ? s / counted : 0));
  const withGt = perClass.filter((c) => c.ap !== null);
  const avg = (f: (c: ClassAP) => number | null): number => (withGt.length > 0 ? withGt.reduce((s, c) => s + (f(c) ?? 0), 0) / withGt.length : 0);
  return { map: avg((c) => c.ap), ap50: avg((c) => c.ap50), ap75: avg((c) => c.ap75), perClass, apPerThreshold };
}

// Detector evaluation: DETR's post-processing (each query → its most probable object class and that
// probability as the score; "no object" never wins a label), COCO mAP over a labelled set, and a PNG of
// predictions drawn on canvases.
import { inferenceMode, tidy, type Tensor } from '../tensor/tensor.js';
import { normalize } from '../data/augment.js';
import type { DetectionDataset } from '../data/detection.js';
import { drawBoxes, savePng, type Box } from '../report/png.js';
import { cxcywhToXyxy, type Box4 } from './boxes.js';
import { evaluateDetections, type DetectionBox, type GroundTruthBox, type MapResult } from './map.js';
import type { DetectionTarget } from './loss.js';

/** What a detector offers the evaluation (DETR of models/detr.ts). */
export interface DetectorModule {
  forward(x: Tensor, o?: { returnAttention?: boolean; aux?: boolean }): { logits: Tensor; boxes: Tensor };
  eval(): unknown;
  train(mode?: boolean): unknown;
  training: boolean;
}

/** One query's prediction: class, score = p(class), cxcywh box normalised to [0, 1]. */
export interface Prediction {
  label: number;
  score: number;
  box: Box4;
}

/** DETR's PostProcess on one batch: per image, every query's best object class and its probability. */
export function postprocess(logits: Tensor, boxes: Tensor): Prediction[][] {
  const [B, Q, C1] = logits.shape as [number, number, number];
  const [scores, labels, bx] = tidy(() => {
    const prob = logits.softmax(-1).narrow(-1, 0, C1 - 1);
    const { values, indices } = prob.maxDim(-1);
    return [values.float().data() as Float32Array, indices.toArray(), boxes.float().data() as Float32Array];
  });
  const out: Prediction[][] = [];
  for (let b = 0; b < B; b++) {
    const preds: Prediction[] = [];
    for (let q = 0; q < Q; q++) {
      const k = b * Q + q;
      preds.push({ label: labels![k]!, score: scores![k]!, box: [bx![4 * k]!, bx![4 * k + 1]!, bx![4 * k + 2]!, bx![4 * k + 3]!] });
    }
    out.push(preds);
  }
  return out;
}

/** Predictions of `model` on every image of `data` (inference mode, batches of `batchSize`). */
export function predict(model: DetectorModule, data: Pick<DetectionDataset, 'images' | 'mean' | 'std'>, batchSize = 250, limit?: number): Prediction[][] {
  const wasTraining = model.training;
  model.eval();
  const n = Math.min(data.images.size(0), limit ?? Infinity);
  const out: Prediction[][] = [];
  inferenceMode(() => {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      out.push(...tidy(() => {
        const o = model.forward(normalize(data.images.narrow(0, s, m), data.mean, data.std));
        return postprocess(o.logits, o.boxes);
      }));
    }
  });
  if (wasTraining) model.train();
  return out;
}

/** COCO mAP of predictions against targets (image i ↔ predictions[i]); every query is a detection. */
export function mapOf(predictions: readonly Prediction[][], targets: readonly DetectionTarget[], numClasses: number): MapResult {
  const gts: GroundTruthBox[] = [];
  const dets: DetectionBox[] = [];
  targets.forEach((t, i) => t.labels.forEach((c, j) => gts.push({ imageId: i, category: c, box: cxcywhToXyxy(t.boxes[j]!) })));
  predictions.forEach((ps, i) => ps.forEach((p) => dets.push({ imageId: i, category: p.label, score: p.score, box: cxcywhToXyxy(p.box) })));
  return evaluateDetections(gts, dets, { categories: Array.from({ length: numClasses }, (_, c) => c) });
}

export interface DetectorEval extends MapResult {
  images: number;
}

/** mAP@[.5:.95], AP50, AP75 and per-class AP of a detector on a labelled set. */
export function evaluateDetector(model: DetectorModule, data: DetectionDataset, batchSize = 250): DetectorEval {
  const preds = predict(model, data, batchSize);
  return { ...mapOf(preds, data.targets, data.numClasses), images: preds.length };
}

/** Score above which a prediction is drawn. */
export const DRAW_THRESHOLD = 0.5;

/** Boxes to draw for predictions (score ≥ threshold) in normalised coordinates. */
export function predictionBoxes(preds: readonly Prediction[], classNames: readonly string[], threshold = DRAW_THRESHOLD): Box[] {
  return preds
    .filter((p) => p.score >= threshold)
    .map((p) => {
      const [x0, y0, x1, y1] = cxcywhToXyxy(p.box);
      return { x0, y0, x1, y1, label: classNames[p.label] ?? String(p.label), score: p.score, color: paletteFor(p.label) };
    });
}

const COLORS = ['#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c', '#fabebe'];
const paletteFor = (label: number): string => COLORS[label % COLORS.length]!;

/**
 * A PNG grid of `n` images with the model's predictions (score ≥ 0.5) drawn and labelled; written
 * atomically to `file`.
 */
export function savePredictionsPng(file: string, model: DetectorModule, data: DetectionDataset, n = 16, scale = 3): void {
  const k = Math.min(n, data.images.size(0));
  const preds = predict(model, data, 250, k);
  const images = data.images.narrow(0, 0, k);
  const png = drawBoxes(images, preds.map((p) => predictionBoxes(p, data.classNames)), { normalized: true, showLabels: true, scale, cols: Math.min(k, 8) });
  images.dispose();
  savePng(file, png);
}

// Layout canvases for data-free detection: a generator draws one object per sampled box and the
// objects are composited, differentiably, onto the teacher's own empty background. Why: a generator
// that draws whole canvases collapses onto a texture the DETR teacher reads as 12 objects everywhere
// (measured on the shipped canvas teacher: every preview canvas the same lattice, student val mAP
// 0.0000 after 5 minutes); drawing objects into sampled boxes gives a layout (how many objects, where,
// how large) the generator cannot collapse, and a target the teacher's set loss can grade.
//
// Data-free: the only inputs are the teacher (its weights, its normalisation) and the sampling
// priors of the boxes (objects per canvas, side as a fraction of the canvas: hyper-parameters a user
// sets for their domain, as DIODE samples boxes for YOLO). The background is the constant canvas on
// which the teacher sees the fewest objects (emptyBackground), not a statistic of any real image.
import { affineGrid, gridSample } from '../../tensor/functional.js';
import { inferenceMode, tensor, tidy, type Tensor } from '../../tensor/tensor.js';
import type { DETR } from '../../models/detr.js';
import type { DetectionTarget } from '../loss.js';

export interface EmptyBackground {
  /** Pixel value in [0, 1] of the constant canvas the teacher finds emptiest. */
  level: number;
  /** The teacher's mean object probability (1 − p(no object)) over its queries on that canvas. */
  objectness: number;
  /** Objects are drawn brighter than the background (level < 0.5) or darker. */
  bright: boolean;
}

/**
 * Probes the teacher with constant canvases (pixel values 0, 1/steps, …, 1 in every channel) and
 * returns the one on which its queries are most confidently "no object".
 */
export function emptyBackground(teacher: DETR, inputShape: readonly [number, number, number], mean: readonly number[], std: readonly number[], steps = 20): EmptyBackground {
  const [C, H, W] = inputShape;
  const levels = Array.from({ length: steps + 1 }, (_, i) => i / steps);
  const objectness = inferenceMode(() =>
    tidy(() => {
      const m = tensor([...mean], { shape: [1, C, 1, 1] });
      const s = tensor([...std], { shape: [1, C, 1, 1] });
      const x = tensor(levels, { shape: [levels.length, 1, 1, 1] }).expand([levels.length, C, H, W]).sub(m).div(s);
      const out = teacher.forward(x, { aux: false });
      const C1 = out.logits.size(-1);
      return Array.from(out.logits.softmax(-1).select(-1, C1 - 1).rsub(1).mean(-1).float().data() as Float32Array);
    }),
  );
  let best = 0;
  for (let i = 1; i < levels.length; i++) if (objectness[i]! < objectness[best]!) best = i;
  return { level: levels[best]!, objectness: objectness[best]!, bright: levels[best]! < 0.5 };
}

/**
 * Composites object images into canvases. objects: [B·K, C, s, s] pixel values in [0, 1] (row b·K + j
 * is canvas b's j-th object; rows past a canvas's own object count are ignored); targets: each
 * canvas's boxes (cxcywh in [0, 1], at most K). Each object is resampled (bilinear) into its box; the
 * canvas is background + ink: level + (1 − level)·a for bright objects (a = the strongest object
 * pixel there), level·(1 − a) for dark ones. Differentiable in `objects`. Returns pixels [B, C, S, S].
 */
export function composeCanvases(objects: Tensor, targets: readonly DetectionTarget[], K: number, size: number, bg: Pick<EmptyBackground, 'level' | 'bright'>): Tensor {
  const B = targets.length;
  const [N, C] = objects.shape as [number, number];
  if (N !== B * K) throw new Error(`composeCanvases: ${N} object images for ${B} canvases × ${K} slots`);
  const theta: number[] = [];
  for (const t of targets) {
    if (t.boxes.length > K) throw new Error(`composeCanvases: a canvas has ${t.boxes.length} boxes, more than the ${K} slots`);
    for (let j = 0; j < K; j++) {
      const b = t.boxes[j];
      // Output (canvas) coordinates in [-1, 1] → the object image's: (x − (2cx − 1)) / w. An empty slot
      // samples far outside the object image, which is zero there.
      if (b) theta.push(1 / b[2], 0, (1 - 2 * b[0]) / b[2], 0, 1 / b[3], (1 - 2 * b[1]) / b[3]);
      else theta.push(1, 0, 10, 0, 1, 10);
    }
  }
  return tidy(() => {
    const th = tensor(theta, { shape: [N, 2, 3], dtype: objects.dtype });
    const layers = gridSample(objects, affineGrid(th, [N, C, size, size]), { padding: 'zeros' });
    const ink = layers.view([B, K, C, size, size]).amax(1);
    return bg.bright ? ink.mul(1 - bg.level).add(bg.level) : ink.rsub(1).mul(bg.level);
  });
}

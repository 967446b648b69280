// Supervised training and evaluation of an image classifier on real data (teachers, `scratch`
// students). One step: augment → normalise → forward → cross-entropy (label smoothing) → AdamW.
import { crossEntropy } from '../tensor/functional.js';
import { inferenceMode, manualSeed, randperm, tidy } from '../tensor/tensor.js';
import { AdamW, type Optimizer } from '../nn/optim.js';
import { clipGradNorm } from '../nn/clip.js';
import { normalize, randomHorizontalFlip, randomTranslate } from '../data/augment.js';
import type { ImageDataset } from '../data/types.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';

/** Anything trainable as an image classifier: ViTs and the CNN baselines. */
export type ClassifierModule = Module & { forward(x: Tensor): { logits: Tensor } };

export interface TrainOptions {
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Stop after this many epochs... */
  epochs?: number;
  /** ...or after this many seconds (the schedule is planned from the measured step time). */
  seconds?: number;
  /** Linear warm-up steps before the cosine decay. */
  warmupSteps: number;
  labelSmoothing: number;
  /** Random translation in pixels (±). */
  translate: number;
  flip: boolean;
  clipNorm: number;
  seed: number;
}

export const TRAIN_DEFAULTS: TrainOptions = {
  batchSize: 64,
  lr: 2e-3,
  weightDecay: 0.05,
  warmupSteps: 100,
  labelSmoothing: 0.1,
  translate: 2,
  flip: false,
  clipNorm: 1,
  seed: 0,
};

export interface StepInfo {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  seconds: number;
  imagesPerSecond: number;
}

/**
 * One supervised step on the samples `idx` of `data`: augment (translation, flips) → normalise →
 * cross-entropy with label smoothing → backward → clip → optimiser step. Returns the loss. `idx` is
 * consumed (freed with the step's other tensors).
 */
export function supervisedStep(
  model: ClassifierModule,
  opt: Optimizer,
  data: ImageDataset,
  idx: Tensor,
  o: Pick<TrainOptions, 'translate' | 'flip' | 'labelSmoothing' | 'clipNorm'>,
): number {
  return tidy(() => {
    let x = data.images.indexSelect(0, idx);
    if (o.translate > 0) x = randomTranslate(x, o.translate);
    if (o.flip) x = randomHorizontalFlip(x);
    const y = data.labels.indexSelect(0, idx);
    idx.dispose();
    const l = crossEntropy(model.forward(normalize(x, data.mean, data.std)).logits, y, { labelSmoothing: o.labelSmoothing });
    opt.zeroGrad();
    l.backward();
    if (o.clipNorm > 0) clipGradNorm(model.parameters(), o.clipNorm);
    opt.step();
    return l.item();
  });
}

/** Linear warm-up then cosine decay to zero (timm's schedule), as a function of the step. */
export function warmupCosine(step: number, total: number, warmup: number, base: number): number {
  if (step < warmup) return (base * (step + 1)) / warmup;
  const t = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return 0.5 * base * (1 + Math.cos(Math.PI * t));
}

export function trainClassifier(
  model: ClassifierModule,
  data: ImageDataset,
  options: Partial<TrainOptions>,
  onStep?: (info: StepInfo) => void,
): { steps: number; epochs: number; seconds: number; finalLoss: number } {
  const o: TrainOptions = { ...TRAIN_DEFAULTS, ...options };
  if (o.epochs === undefined && o.seconds === undefined) throw new Error('trainClassifier: give epochs or seconds');
  manualSeed(o.seed);
  model.train();
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
  const n = data.labels.size(0);
  const stepsPerEpoch = Math.floor(n / o.batchSize);
  let totalSteps = o.epochs !== undefined ? o.epochs * stepsPerEpoch : Number.POSITIVE_INFINITY;
  const start = performance.now();
  let step = 0;
  let epoch = 0;
  let loss = Number.NaN;
  const elapsed = (): number => (performance.now() - start) / 1000;

  outer: for (;;) {
    const perm = randperm(n);
    for (let b = 0; b < stepsPerEpoch; b++) {
      if (step >= totalSteps || (o.seconds !== undefined && elapsed() >= o.seconds)) break outer;
      const lr = warmupCosine(step, Number.isFinite(totalSteps) ? totalSteps : 10 * o.warmupSteps, o.warmupSteps, o.lr);
      for (const g of opt.paramGroups) g.lr = lr;
      loss = supervisedStep(model, opt, data, perm.narrow(0, b * o.batchSize, o.batchSize), o);
      if (!Number.isFinite(loss)) {
        perm.dispose();
        throw new Error(`training diverged: loss is ${loss} at step ${step} (lower the learning rate?)`);
      }
      step++;
      // With a time budget, plan the cosine schedule from the measured speed after a few steps.
      if (o.seconds !== undefined && step === 10) {
        totalSteps = Math.max(step + 1, Math.floor((o.seconds / elapsed()) * step));
      }
      onStep?.({
        step,
        totalSteps: Number.isFinite(totalSteps) ? totalSteps : step,
        epoch,
        loss,
        lr,
        seconds: elapsed(),
        imagesPerSecond: (step * o.batchSize) / elapsed(),
      });
    }
    perm.dispose();
    epoch++;
  }
  model.eval();
  return { steps: step, epochs: step / stepsPerEpoch, seconds: elapsed(), finalLoss: loss };
}

export interface EvalResult {
  accuracy: number;
  correct: number;
  total: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  perClassAccuracy: number[];
}

/** Evaluation split between data-parallel ranks: this rank's share, and the sum over all ranks. */
export interface EvalShard {
  rank: number;
  world: number;
  /** Element-wise sum of `values` over the ranks (every rank calls it with the same length). */
  sum: (values: number[]) => number[];
}

/**
 * Accuracy, confusion matrix and per-class accuracy on a labelled set (inference mode, no grads).
 * With `shard`, each rank evaluates its contiguous share and the confusion counts are summed: every
 * rank gets the whole set's figures, identical to one process evaluating it all.
 */
export function evaluateClassifier(model: ClassifierModule, data: ImageDataset, batchSize = 500, shard?: EvalShard): EvalResult {
  const wasTraining = model.training;
  model.eval();
  const k = data.numClasses;
  const n = data.labels.size(0);
  let confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const lo = shard ? Math.floor((n * shard.rank) / shard.world) : 0;
  const hi = shard ? Math.floor((n * (shard.rank + 1)) / shard.world) : n;
  inferenceMode(() => {
    for (let s = lo; s < hi; s += batchSize) {
      const m = Math.min(batchSize, hi - s);
      const [pred, truth] = tidy(() => {
        const x = normalize(data.images.narrow(0, s, m), data.mean, data.std);
        return [model.forward(x).logits.argmax(1).toArray(), data.labels.narrow(0, s, m).toArray()];
      });
      for (let i = 0; i < m; i++) confusion[truth![i]!]![pred![i]!]!++;
    }
  });
  if (wasTraining) model.train();
  if (shard) {
    const total = shard.sum(confusion.flat());
    confusion = confusion.map((row, i) => row.map((_, j) => total[i * k + j]!));
  }
  const correct = confusion.reduce((acc, row, i) => acc + row[i]!, 0);
  const perClassAccuracy = confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? Number.NaN : row[i]! / total;
  });
  return { accuracy: correct / n, correct, total: n, confusion, perClassAccuracy };
}

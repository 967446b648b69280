// The one distillation loop every method runs in: per iteration, one synthesis step (the method
// updates its generator or image bank) and k student steps; the student's accuracy on a real
// held-out split every `evalEvery` iterations (evaluation only: never used to train or to select);
// sample grids; checkpoints every `checkpointEvery` iterations with an exact --resume (libtorch's
// generator is re-seeded from (seed, iteration) at every iteration start); a NaN loss stops the run
// with the last good checkpoint intact.
import { dataParallel } from '../dist/data-parallel.js';
import { inferenceMode, tidy, type Tensor } from '../tensor/tensor.js';
import { Adam, SGD, type Optimizer } from '../nn/optim.js';
import { clipGradNorm } from '../nn/clip.js';
import type { ImageDataset } from '../data/types.js';
import { denormalize } from '../data/augment.js';
import type { Classifier } from '../models/types.js';
import { evaluateClassifier } from '../train/classifier.js';
import { NaNLossError, runBudgetedLoop, type DriverResult, type LoopConfig } from './driver.js';
import type { DistillContext, DistillMethod, SyntheticBatch } from './types.js';
import { synthesisFigures } from './collapse.js';

export { iterationSeed, NaNLossError, type LoopConfig } from './driver.js';

export interface IterationLog {
  iteration: number;
  seconds: number;
  val_acc?: number;
  [k: string]: number | undefined;
}

export interface LoopHooks {
  onIteration?: (it: number, total: number, logs: Record<string, number>, seconds: number) => void;
  onEval?: (row: IterationLog) => void;
  /** Called with a preview batch (pixel space [0,1]) and the teacher's predicted classes. */
  onSamples?: (iteration: number, pixels: Tensor, predicted: number[], numClasses: number) => void;
  log?: (line: string) => void;
}

function makeOptimizer(student: Classifier, method: DistillMethod, lr: number): Optimizer {
  const o = method.studentOptimizer;
  return o.kind === 'sgd'
    ? new SGD(student.parameters(), { lr, momentum: o.momentum ?? 0.9, weightDecay: o.weightDecay ?? 5e-4 })
    : new Adam(student.parameters(), { lr, weightDecay: o.weightDecay ?? 0 });
}

/** Freezes the teacher: eval mode and no gradients for its parameters (inputs still get them). */
export function freeze(model: Classifier): void {
  model.eval();
  for (const p of model.parameters()) p.requiresGrad = false;
}

export function distillLoop(
  ctx: DistillContext,
  method: DistillMethod,
  cfg: LoopConfig,
  out: string,
  val: ImageDataset,
  opts: { resume?: boolean } & LoopHooks = {},
): DriverResult {
  freeze(ctx.teacher);
  ctx.student.train();
  const baseLr = cfg.studentLr ?? method.studentOptimizer.lr;
  const opt = makeOptimizer(ctx.student, method, baseLr);
  return runBudgetedLoop(cfg, out, { model: ctx.student, opt, method }, {
    baseLr,
    resume: opts.resume,
    log: opts.log,
    onIteration: opts.onIteration,
    onEval: opts.onEval,
    synthesize: (it) => {
      const batch = method.synthesize(ctx, it);
      // The collapse guard's figures (collapse.ts): what the teacher decides on this batch.
      return { ...batch, logs: { ...batch.logs, ...synthesisFigures(ctx.teacher, batch.x, ctx.numClasses) } };
    },
    studentSteps: method.studentStepsAt ? (it) => method.studentStepsAt!(it) : method.studentStepsPerIteration,
    studentStep: (fresh, k) => {
      const batch: SyntheticBatch = method.studentBatch ? method.studentBatch(ctx, fresh, k) : fresh;
      const { loss, logs } = method.studentLoss(ctx, batch);
      const value = loss.item();
      if (!Number.isFinite(value)) throw new NaNLossError(`the student loss is ${value} (${method.name})`);
      opt.zeroGrad();
      loss.backward();
      if (cfg.clipNorm > 0) clipGradNorm(ctx.student.parameters(), cfg.clipNorm);
      opt.step();
      return logs;
    },
    // Data-parallel: each rank evaluates its share of the validation split (the counts are summed).
    evaluate: () => ({ val_acc: evaluateClassifier(ctx.student, val, 500, dataParallel()?.evalShard).accuracy }),
    evaluateOnEveryRank: true,
    samples: opts.onSamples ? (iteration) => writeSamples(ctx, method, iteration, opts.onSamples!) : undefined,
  });
}

function writeSamples(ctx: DistillContext, method: DistillMethod, iteration: number, sink: NonNullable<LoopHooks['onSamples']>): void {
  if (!method.previewBatch) return;
  tidy(() => {
    const x = inferenceMode(() => method.previewBatch!(ctx, 8 * ctx.numClasses));
    const predicted = inferenceMode(() => ctx.teacher.forward(x).logits.argmax(1).toArray());
    sink(iteration, denormalize(x, ctx.mean, ctx.std).clamp(0, 1), predicted, ctx.numClasses);
  });
}

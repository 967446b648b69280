// The one distillation loop every method runs in: per iteration, one synthesis step (the method
// updates its generator or image bank) and k student steps; the student's accuracy on a real
// held-out split every `evalEvery` iterations (evaluation only: never used to train or to select);
// sample grids; checkpoints every `checkpointEvery` iterations with an exact --resume (libtorch's
// generator is re-seeded from (seed, iteration) at every iteration start); a NaN loss stops the run
// with the last good checkpoint intact.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, inferenceMode, manualSeed, tidy, type Tensor } from '../tensor/tensor.js';
import { Adam, SGD, type Optimizer } from '../nn/optim.js';
import { clipGradNorm } from '../nn/clip.js';
import type { ImageDataset } from '../data/types.js';
import { denormalize } from '../data/augment.js';
import type { Classifier } from '../models/types.js';
import { checkpointPaths, loadCheckpointInto, readCheckpointConfig, saveCheckpoint } from '../export/checkpoint.js';
import { writeFileAtomic } from '../util/fs.js';
import { evaluateClassifier } from '../train/classifier.js';
import type { DistillContext, DistillMethod, SyntheticBatch } from './types.js';

export interface LoopConfig {
  /** Stop after this many iterations... */
  iterations: number;
  /** ...or after this many minutes of training (whichever comes first; resumed time counts). */
  minutes: number;
  batchSize: number;
  seed: number;
  evalEvery: number;
  sampleEvery: number;
  checkpointEvery: number;
  /** Student learning-rate override (else the method's default). */
  studentLr?: number;
  /** Cosine-decay the student's learning rate over the iteration budget. */
  cosine: boolean;
  clipNorm: number;
}

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

export const iterationSeed = (seed: number, iteration: number): number => seed * 1_000_003 + iteration;

interface LoopState {
  iteration: number;
  seconds: number;
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
): { iterations: number; seconds: number; stoppedBy: 'iterations' | 'time' } {
  const log = opts.log ?? (() => {});
  const ckptDir = join(out, 'checkpoints');
  const last = join(ckptDir, 'last');
  mkdirSync(ckptDir, { recursive: true });
  mkdirSync(join(out, 'samples'), { recursive: true });
  freeze(ctx.teacher);
  ctx.student.train();
  const baseLr = cfg.studentLr ?? method.studentOptimizer.lr;
  const opt = makeOptimizer(ctx.student, method, baseLr);
  let state: LoopState = { iteration: 0, seconds: 0 };
  const metricsFile = join(out, 'metrics.jsonl');

  if (opts.resume && existsSync(checkpointPaths(last).config)) {
    const saved = readCheckpointConfig<{ loop: LoopConfig; state: LoopState; optimizer: ReturnType<Optimizer['stateDict']>['meta']; method: Record<string, unknown> }>(last);
    const extra = loadCheckpointInto(last, ctx.student, ['optim.', 'method.']);
    const optState: Record<string, Tensor> = {};
    const methodState: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(extra)) {
      if (k.startsWith('optim.')) optState[k.slice(6)] = t;
      else methodState[k.slice(7)] = t;
    }
    opt.loadStateDict({ state: optState, meta: saved.optimizer });
    method.loadStateDict({ tensors: methodState, meta: saved.method });
    dispose(extra);
    state = saved.state;
    // Drop metric rows logged after the checkpoint (the run was interrupted in between).
    const rows = existsSync(metricsFile) ? readFileSync(metricsFile, 'utf8').split('\n').filter((l) => l.trim() !== '') : [];
    writeFileAtomic(metricsFile, rows.filter((l) => (JSON.parse(l) as IterationLog).iteration <= state.iteration).map((l) => `${l}\n`).join(''));
    log(`resumed from ${last} at iteration ${state.iteration} (${state.seconds.toFixed(0)} s done)`);
  } else {
    writeFileAtomic(metricsFile, '');
  }

  // Whether checkpoints/last holds this run's state: a NaN message must not point at a checkpoint that is not there.
  let checkpointed = Boolean(opts.resume && existsSync(checkpointPaths(last).config));
  const lastGood = (): string =>
    checkpointed ? `the last good checkpoint is ${checkpointPaths(last).weights}` : `no checkpoint was written yet (one every ${cfg.checkpointEvery} iterations)`;
  const saveLast = (): void => {
    const sd = opt.stateDict();
    const extra: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(sd.state)) extra[`optim.${k}`] = t;
    const ms = method.stateDict();
    for (const [k, t] of Object.entries(ms.tensors)) extra[`method.${k}`] = t;
    saveCheckpoint(last, ctx.student, { loop: cfg, state, optimizer: sd.meta, method: ms.meta }, extra);
    checkpointed = true;
    dispose(sd.state);
    dispose(ms.tensors);
  };

  const budgetSeconds = cfg.minutes * 60;
  const started = performance.now() - state.seconds * 1000;
  const elapsed = (): number => (performance.now() - started) / 1000;
  const sums: Record<string, number> = {};
  let count = 0;
  let stoppedBy: 'iterations' | 'time' = 'iterations';
  // The planned total drives the cosine schedule: the iteration cap, or the time budget at the
  // measured speed (re-estimated as the run goes).
  const plannedTotal = (): number => {
    if (!Number.isFinite(budgetSeconds) || state.iteration < 5) return cfg.iterations;
    const perIt = elapsed() / state.iteration;
    return Math.min(cfg.iterations, Math.max(state.iteration + 1, Math.floor(budgetSeconds / perIt)));
  };

  while (state.iteration < cfg.iterations) {
    if (elapsed() >= budgetSeconds) {
      stoppedBy = 'time';
      break;
    }
    const it = state.iteration;
    manualSeed(iterationSeed(cfg.seed, it));
    const total = plannedTotal();
    const lr = cfg.cosine ? 0.5 * baseLr * (1 + Math.cos((Math.PI * Math.min(it, total)) / Math.max(1, total))) : baseLr;
    opt.setLr(lr);
    const logs = tidy(() => {
      const fresh = method.synthesize(ctx, it);
      const l: Record<string, number> = { ...fresh.logs };
      for (let k = 0; k < method.studentStepsPerIteration; k++) {
        const batch: SyntheticBatch = method.studentBatch ? method.studentBatch(ctx, fresh, k) : fresh;
        const { loss, logs: sl } = method.studentLoss(ctx, batch);
        const value = loss.item();
        if (!Number.isFinite(value)) {
          throw new NaNLossError(`the student loss is ${value} at iteration ${it} (${method.name}); ${lastGood()}. Lower the learning rates or loss weights.`);
        }
        opt.zeroGrad();
        loss.backward();
        if (cfg.clipNorm > 0) clipGradNorm(ctx.student.parameters(), cfg.clipNorm);
        opt.step();
        for (const [key, v] of Object.entries(sl)) l[key] = (l[key] ?? 0) + v / method.studentStepsPerIteration;
      }
      for (const [key, v] of Object.entries(l)) {
        if (!Number.isFinite(v)) throw new NaNLossError(`${key} is ${v} at iteration ${it} (${method.name}); ${lastGood()}.`);
      }
      return l;
    });
    for (const [k, v] of Object.entries(logs)) sums[k] = (sums[k] ?? 0) + v;
    count++;
    state.iteration = it + 1;
    state.seconds = elapsed();
    opts.onIteration?.(state.iteration, plannedTotal(), logs, state.seconds);

    const done = state.iteration >= cfg.iterations || elapsed() >= budgetSeconds;
    if (state.iteration % cfg.evalEvery === 0 || done) {
      const valAcc = evaluateClassifier(ctx.student, val).accuracy;
      ctx.student.train();
      const row: IterationLog = { iteration: state.iteration, seconds: state.seconds, val_acc: valAcc, lr };
      for (const [k, v] of Object.entries(sums)) row[k] = v / Math.max(1, count);
      for (const k of Object.keys(sums)) delete sums[k];
      count = 0;
      appendFileSync(metricsFile, `${JSON.stringify(row)}\n`);
      opts.onEval?.(row);
    }
    if ((state.iteration % cfg.sampleEvery === 0 || done) && opts.onSamples) writeSamples(ctx, method, state.iteration, opts.onSamples);
    if (state.iteration % cfg.checkpointEvery === 0 || done) saveLast();
  }
  if (state.iteration === 0) saveLast();
  opt.disposeState();
  return { iterations: state.iteration, seconds: state.seconds, stoppedBy };
}

function writeSamples(ctx: DistillContext, method: DistillMethod, iteration: number, sink: NonNullable<LoopHooks['onSamples']>): void {
  if (!method.previewBatch) return;
  tidy(() => {
    const x = inferenceMode(() => method.previewBatch!(ctx, 8 * ctx.numClasses));
    const predicted = inferenceMode(() => ctx.teacher.forward(x).logits.argmax(1).toArray());
    sink(iteration, denormalize(x, ctx.mean, ctx.std).clamp(0, 1), predicted, ctx.numClasses);
  });
}

export class NaNLossError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NaNLossError';
  }
}


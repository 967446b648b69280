// The budgeted training driver both distillation loops run in (classification, distill/loop.ts;
// detection, detect/distill/run.ts): the iteration / time budget, the cosine learning-rate schedule
// over the planned total (re-estimated from the measured speed), libtorch's generator re-seeded from
// (seed, iteration) at every iteration start, loss averaging into metrics.jsonl rows at each
// evaluation, sample grids, checkpoints/last (the model, `optim.*`, `method.*` and any training-only
// modules under their own prefix) with an exact --resume, and a NaN loss that stops the run with a
// message pointing at the last good checkpoint — or saying that none was written yet.
//
// Data-parallel (src/dist/data-parallel.ts; --nproc / --world-size): each rank synthesises with its
// own seed and averages its gradients with the others at every optimiser step; the ranks agree on
// the clock so every decision (stop, schedule, evaluate, checkpoint) is taken at the same iteration;
// each rank evaluates its share of the validation split (evaluateOnEveryRank), rank 0 alone writes
// metrics.jsonl and samples; every rank keeps its own checkpoint
// (rank 0: checkpoints/last; rank r: checkpoints/rank-r/last) and a resume takes every rank back to
// the newest iteration all of them have (a kill during a checkpoint write leaves some one behind).
//
// With `studentEma` (--student-ema) an average of the student's weights is updated after every
// iteration, evaluated in place of the student, saved under `ema.` beside it, and left in the model at
// the end (the reported student); the raw student goes on training, and its validation figures are
// logged beside the average's as raw_*.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dispose, manualSeed, tidy, type Tensor } from '../tensor/tensor.js';
import type { Optimizer, OptimizerMeta } from '../nn/optim.js';
import type { Module } from '../nn/module.js';
import { checkpointPaths, loadCheckpointInto, readCheckpointConfig, saveCheckpoint, unprefixed } from '../export/checkpoint.js';
import { writeFileAtomic } from '../util/fs.js';
import { dataParallel, rankCheckpointBase, rankSeed, resumeCheckpoint } from '../dist/data-parallel.js';
import { WeightEma } from './ema.js';

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
  /**
   * Decay of an exponential moving average of the student's weights (ema.ts), evaluated and reported
   * in place of the last iterate; absent or 0: off.
   */
  studentEma?: number;
}

export const iterationSeed = (seed: number, iteration: number): number => seed * 1_000_003 + iteration;

export class NaNLossError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NaNLossError';
  }
}

export interface LoopState {
  iteration: number;
  seconds: number;
}

/** What a method keeps between iterations (generator, its optimiser, an image bank), for checkpoints. */
export interface StatefulMethod {
  readonly name: string;
  stateDict(): { tensors: Record<string, Tensor>; meta: Record<string, unknown> };
  loadStateDict(s: { tensors: Record<string, Tensor>; meta: Record<string, unknown> }): void;
}

export interface DriverParts {
  /** Saved at the top level of checkpoints/last (the student). */
  model: Module;
  opt: Optimizer;
  method: StatefulMethod;
  /** Training-only modules saved under `<prefix>.` in checkpoints/last (the detection dense head). */
  extra?: Record<string, Module>;
}

export interface DriverHooks<B extends { logs: Record<string, number> }> {
  baseLr: number;
  /** The synthesis step of an iteration (inside tidy): the batch the student steps train on, and its losses. */
  synthesize: (iteration: number) => B;
  /**
   * Student steps per iteration (or per iteration number: a method's generator warm-up has 0); their
   * losses are averaged into the iteration's logs.
   */
  studentSteps: number | ((iteration: number) => number);
  /**
   * Student step k on the iteration's batch: returns its losses. A non-finite loss throws NaNLossError
   * (or is returned and caught here); the driver adds the iteration and where the last good checkpoint is.
   */
  studentStep: (batch: B, k: number) => Record<string, number>;
  /** The validation metrics (evaluation only; the model is put back in train mode after). */
  evaluate: () => Record<string, number>;
  /**
   * Data-parallel: `evaluate` is collective (each rank evaluates a share, the figures are summed), so
   * every rank calls it; otherwise rank 0 alone evaluates while the others wait.
   */
  evaluateOnEveryRank?: boolean;
  /** Sample grids every `sampleEvery` iterations and at the end. */
  samples?: (iteration: number) => void;
  /**
   * Brings the method's state to "after `iteration` iterations" before it is saved or drawn from
   * (the detection --generator-process, whose generator runs in another process); absent: it is.
   */
  syncMethod?: (iteration: number) => void;
  resume?: boolean;
  log?: (line: string) => void;
  onIteration?: (it: number, total: number, logs: Record<string, number>, seconds: number) => void;
  onEval?: (row: { iteration: number; seconds: number; [k: string]: number }) => void;
}

export interface DriverResult {
  iterations: number;
  seconds: number;
  stoppedBy: 'iterations' | 'time';
}

export function runBudgetedLoop<B extends { logs: Record<string, number> }>(cfg: LoopConfig, out: string, parts: DriverParts, h: DriverHooks<B>): DriverResult {
  const dp = dataParallel();
  const rank = dp?.rank ?? 0;
  const main = rank === 0;
  const log = main ? (h.log ?? (() => {})) : () => {};
  const last = rankCheckpointBase(out, rank);
  mkdirSync(dirname(last), { recursive: true });
  if (main) mkdirSync(join(out, 'samples'), { recursive: true });
  const { model, opt, method } = parts;
  const extraModules = Object.entries(parts.extra ?? {});
  const ema = cfg.studentEma ? new WeightEma(model, cfg.studentEma) : null;
  const prefixes = ['optim.', 'method.', ...(ema ? ['ema.'] : []), ...extraModules.map(([p]) => `${p}.`)];
  let state: LoopState = { iteration: 0, seconds: 0 };
  const metricsFile = join(out, 'metrics.jsonl');

  const resuming = Boolean(h.resume);
  if (resuming) {
    // Every rank resumes at the newest iteration all of them saved.
    const from = resumeCheckpoint(out, last, 'iteration', log);
    const saved = readCheckpointConfig<{ state: LoopState; optimizer: OptimizerMeta; method: Record<string, unknown>; emaUpdates?: number }>(from);
    const extra = loadCheckpointInto(from, model, prefixes);
    const byPrefix = (p: string): Record<string, Tensor> => unprefixed(p, extra);
    for (const [p, m] of extraModules) m.loadStateDict(byPrefix(`${p}.`));
    opt.loadStateDict({ state: byPrefix('optim.'), meta: saved.optimizer });
    method.loadStateDict({ tensors: byPrefix('method.'), meta: saved.method });
    ema?.loadStateDict(byPrefix('ema.'), saved.emaUpdates ?? 0);
    dispose(extra);
    state = saved.state;
    // Drop metric rows logged after the checkpoint (the run was interrupted in between).
    const rows = existsSync(metricsFile) ? readFileSync(metricsFile, 'utf8').split('\n').filter((l) => l.trim() !== '') : [];
    if (main) writeFileAtomic(metricsFile, rows.filter((l) => (JSON.parse(l) as LoopState).iteration <= state.iteration).map((l) => `${l}\n`).join(''));
    log(`resumed from ${from} at iteration ${state.iteration} (${state.seconds.toFixed(0)} s done)${dp ? `, ${dp.worldSize} ranks` : ''}`);
  } else if (main) {
    writeFileAtomic(metricsFile, '');
  }
  // Rank 0's weights everywhere (DDP's broadcast at construction); generators follow at their first step.
  dp?.broadcastFromMain(Object.values(model.stateDict()));

  // Whether checkpoints/last holds this run's state: a NaN message must not point at a checkpoint that is not there.
  let checkpointed = resuming;
  const lastGood = (): string =>
    checkpointed ? `the last good checkpoint is ${checkpointPaths(last).weights}` : `no checkpoint was written yet (one every ${cfg.checkpointEvery} iterations)`;
  const saveLast = (): void => {
    h.syncMethod?.(state.iteration);
    const sd = opt.stateDict();
    const ms = method.stateDict();
    const extra: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(sd.state)) extra[`optim.${k}`] = t;
    for (const [k, t] of Object.entries(ms.tensors)) extra[`method.${k}`] = t;
    for (const [p, m] of extraModules) for (const [k, t] of Object.entries(m.stateDict())) extra[`${p}.${k}`] = t;
    const es = ema?.stateDict();
    for (const [k, t] of Object.entries(es?.tensors ?? {})) extra[`ema.${k}`] = t;
    saveCheckpoint(last, model, { loop: cfg, state, optimizer: sd.meta, method: ms.meta, ...(es ? { emaUpdates: es.updates } : {}) }, extra);
    checkpointed = true;
    dispose(sd.state);
    dispose(ms.tensors);
  };

  const budgetSeconds = cfg.minutes * 60;
  const startSeconds = state.seconds;
  const startIteration = state.iteration;
  const started = performance.now() - state.seconds * 1000;
  // Data-parallel: the clock every rank decides by is the agreed (largest) one of the last iteration.
  const elapsed = dp ? (): number => state.seconds : (): number => (performance.now() - started) / 1000;
  const ownElapsed = (): number => (performance.now() - started) / 1000;
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
    manualSeed(iterationSeed(rankSeed(cfg.seed, rank), it));
    const total = plannedTotal();
    const lr = cfg.cosine ? 0.5 * h.baseLr * (1 + Math.cos((Math.PI * Math.min(it, total)) / Math.max(1, total))) : h.baseLr;
    opt.setLr(lr);
    let logs: Record<string, number>;
    try {
      logs = tidy(() => {
        const batch = h.synthesize(it);
        const l: Record<string, number> = { ...batch.logs };
        const steps = typeof h.studentSteps === 'function' ? h.studentSteps(it) : h.studentSteps;
        for (let k = 0; k < steps; k++) {
          for (const [key, v] of Object.entries(h.studentStep(batch, k))) l[key] = (l[key] ?? 0) + v / steps;
        }
        return l;
      });
      for (const [key, v] of Object.entries(logs)) if (!Number.isFinite(v)) throw new NaNLossError(`${key} is ${v} (${method.name})`);
    } catch (e) {
      if (e instanceof NaNLossError) {
        throw new NaNLossError(`${e.message} at iteration ${it}; ${lastGood()}. Lower the learning rates or loss weights.`);
      }
      throw e;
    }
    // Rank 0's buffers (BN running statistics: each rank's own batches moved them) everywhere, as
    // DDP's broadcast_buffers does, here after the step: every rank's checkpoint holds the same student.
    if (dp) dp.broadcastFromMain([...model.buffers(), ...extraModules.flatMap(([, m]) => m.buffers())]);
    ema?.update();
    for (const [k, v] of Object.entries(logs)) sums[k] = (sums[k] ?? 0) + v;
    count++;
    state.iteration = it + 1;
    state.seconds = dp ? dp.agreeMax([ownElapsed()])[0]! : ownElapsed();
    h.onIteration?.(state.iteration, plannedTotal(), logs, state.seconds);

    const done = state.iteration >= cfg.iterations || elapsed() >= budgetSeconds;
    if ((main || h.evaluateOnEveryRank) && (state.iteration % cfg.evalEvery === 0 || done)) {
      // With an average: its figures under their own names, the raw iterate's beside them as raw_*
      // (the two on one trajectory, to compare the average with the last iterate on validation data).
      const metrics = ema ? { ...ema.withAverage(h.evaluate), ...Object.fromEntries(Object.entries(h.evaluate()).map(([k, v]) => [`raw_${k}`, v])) } : h.evaluate();
      model.train();
      const row: { iteration: number; seconds: number; [k: string]: number } = { iteration: state.iteration, seconds: state.seconds, ...metrics, lr };
      for (const [k, v] of Object.entries(sums)) row[k] = v / Math.max(1, count);
      for (const k of Object.keys(sums)) delete sums[k];
      count = 0;
      if (main) {
        appendFileSync(metricsFile, `${JSON.stringify(row)}\n`);
        h.onEval?.(row);
      }
    }
    if (main && (state.iteration % cfg.sampleEvery === 0 || done) && h.samples) {
      h.syncMethod?.(state.iteration);
      h.samples(state.iteration);
    }
    if (state.iteration % cfg.checkpointEvery === 0 || done) saveLast();
  }
  if (state.iteration === 0) saveLast();
  opt.disposeState();
  if (ema) {
    ema.copyIntoModel();
    ema.dispose();
  }
  const ran = state.iteration - startIteration;
  if (dp && ran > 0) {
    const st = dp.stats;
    log(`data-parallel: ${dp.worldSize} ranks; rank 0 spent ${st.collectiveSeconds.toFixed(1)} s of ${(state.seconds - startSeconds).toFixed(1)} s in ${st.collectives} collectives (waiting for the other ranks included), ${(st.gradientBytes / ran / 1e6).toFixed(2)} MB of gradients averaged per iteration`);
  }
  return { iterations: state.iteration, seconds: state.seconds, stoppedBy };
}


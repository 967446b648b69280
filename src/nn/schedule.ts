// Learning-rate schedules as pure functions of the step, and a small driver that writes them into an
// optimiser's param groups.
//
//   const sched = new LRScheduler(opt, cosineWithWarmup({ baseLr: 1e-3, warmupSteps: 500, totalSteps: 10_000 }));
//   for (...) { opt.zeroGrad(); loss.backward(); opt.step(); sched.step(); }
//
// As torch.optim.lr_scheduler: constructing the driver sets the rate of step 0, and each `step()`
// (called after `optimizer.step()`) advances to the next step's rate.
import type { BaseHyper, Optimizer } from './optim.js';

/** A learning rate as a function of the (0-based) optimiser step. */
export type Schedule = (step: number) => number;

function need(cond: boolean, msg: string): void {
  if (!cond) throw new RangeError(msg);
}
const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

export interface CosineWithWarmupOptions {
  baseLr: number;
  /** Steps of linear warm-up from warmupStartLr to baseLr (0: none). */
  warmupSteps: number;
  /** The step at which minLr is reached (it stays there afterwards). */
  totalSteps: number;
  minLr?: number;
  warmupStartLr?: number;
  /**
   * true (default): the cosine spans [warmupSteps, totalSteps], so the rate is baseLr at the end of
   * warm-up (timm with warmup_prefix=True, Hugging Face's get_cosine_schedule_with_warmup).
   * false: the cosine spans [0, totalSteps] and warm-up overrides its start (timm's default).
   */
  warmupPrefix?: boolean;
}

/**
 * Linear warm-up then cosine decay, as timm's CosineLRScheduler (one cycle):
 *   t < W:      warmupStartLr + t·(baseLr − warmupStartLr)/W
 *   W ≤ t < T:  minLr + ½(baseLr − minLr)(1 + cos(π·(t − W)/(T − W)))
 *   t ≥ T:      minLr
 */
export function cosineWithWarmup(o: CosineWithWarmupOptions): Schedule {
  const { baseLr, warmupSteps, totalSteps, minLr = 0, warmupStartLr = 0, warmupPrefix = true } = o;
  need(finite(baseLr) && baseLr >= 0, `cosineWithWarmup: baseLr must be >= 0 (got ${baseLr})`);
  need(finite(minLr) && minLr >= 0, `cosineWithWarmup: minLr must be >= 0 (got ${minLr})`);
  need(finite(warmupStartLr) && warmupStartLr >= 0, `cosineWithWarmup: warmupStartLr must be >= 0 (got ${warmupStartLr})`);
  need(Number.isInteger(warmupSteps) && warmupSteps >= 0, `cosineWithWarmup: warmupSteps must be an integer >= 0 (got ${warmupSteps})`);
  need(Number.isInteger(totalSteps) && totalSteps > warmupSteps, `cosineWithWarmup: totalSteps must be an integer > warmupSteps (got ${totalSteps})`);
  const start = warmupPrefix ? warmupSteps : 0;
  const span = totalSteps - start;
  return (t) => {
    if (t < warmupSteps) return warmupStartLr + t * ((baseLr - warmupStartLr) / warmupSteps);
    if (t >= totalSteps) return minLr;
    return minLr + 0.5 * (baseLr - minLr) * (1 + Math.cos((Math.PI * (t - start)) / span));
  };
}

export interface StepLROptions {
  baseLr: number;
  /** Steps between decays. */
  stepSize: number;
  /** Factor applied at every multiple of stepSize (torch's default 0.1). */
  gamma?: number;
}

/** torch.optim.lr_scheduler.StepLR: baseLr · gamma^⌊t / stepSize⌋. */
export function stepLR(o: StepLROptions): Schedule {
  const { baseLr, stepSize, gamma = 0.1 } = o;
  need(finite(baseLr) && baseLr >= 0, `stepLR: baseLr must be >= 0 (got ${baseLr})`);
  need(Number.isInteger(stepSize) && stepSize > 0, `stepLR: stepSize must be a positive integer (got ${stepSize})`);
  need(finite(gamma) && gamma >= 0, `stepLR: gamma must be >= 0 (got ${gamma})`);
  return (t) => baseLr * gamma ** Math.floor(t / stepSize);
}

export interface OneCycleOptions {
  maxLr: number;
  totalSteps: number;
  /** Fraction of the steps spent rising (torch's default 0.3). */
  pctStart?: number;
  /** initialLr = maxLr / divFactor (default 25). */
  divFactor?: number;
  /** minLr = initialLr / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
}

/**
 * torch.optim.lr_scheduler.OneCycleLR (two phases, cosine annealing, no momentum cycling): cosine
 * from maxLr/divFactor up to maxLr at step pctStart·totalSteps − 1, then cosine down to
 * maxLr/divFactor/finalDivFactor at step totalSteps − 1 (held there afterwards, where torch throws).
 */
export function oneCycle(o: OneCycleOptions): Schedule {
  const { maxLr, totalSteps, pctStart = 0.3, divFactor = 25, finalDivFactor = 1e4 } = o;
  need(finite(maxLr) && maxLr >= 0, `oneCycle: maxLr must be >= 0 (got ${maxLr})`);
  need(Number.isInteger(totalSteps) && totalSteps > 0, `oneCycle: totalSteps must be a positive integer (got ${totalSteps})`);
  need(finite(pctStart) && pctStart > 0 && pctStart < 1, `oneCycle: pctStart must be in (0, 1) (got ${pctStart})`);
  need(finite(divFactor) && divFactor > 0, `oneCycle: divFactor must be > 0 (got ${divFactor})`);
  need(finite(finalDivFactor) && finalDivFactor > 0, `oneCycle: finalDivFactor must be > 0 (got ${finalDivFactor})`);
  const initialLr = maxLr / divFactor;
  const minLr = initialLr / finalDivFactor;
  // torch: phase ends at float(pct_start * total_steps) - 1 and total_steps - 1.
  const end1 = pctStart * totalSteps - 1;
  const end2 = totalSteps - 1;
  const anneal = (start: number, end: number, pct: number): number => end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
  return (t) => {
    if (t <= end1) return anneal(initialLr, maxLr, end1 > 0 ? t / end1 : 1);
    if (t >= end2) return minLr;
    return anneal(maxLr, minLr, (t - end1) / (end2 - end1));
  };
}

export interface LRSchedulerState {
  step: number;
  lastLr: number;
}

/**
 * Drives an optimiser's learning rate from a schedule. Every group gets schedule(step), times the
 * group's `lrScale` when it has one (timm's convention, used for layer-wise lr decay).
 */
export class LRScheduler {
  #step = 0;
  #lastLr = 0;

  constructor(
    readonly optimizer: Optimizer<BaseHyper>,
    readonly schedule: Schedule,
  ) {
    this.apply();
  }

  /** Advances one step (call after optimizer.step()) and sets the new rate. */
  step(): void {
    this.#step += 1;
    this.apply();
  }

  /** The step whose rate is in effect (0 right after construction). */
  get currentStep(): number {
    return this.#step;
  }

  /** The scheduled rate now in effect (before any group's lrScale). */
  get lastLr(): number {
    return this.#lastLr;
  }

  stateDict(): LRSchedulerState {
    return { step: this.#step, lastLr: this.#lastLr };
  }

  /** Restores the step and writes its rate into the optimiser's groups. */
  loadStateDict(s: LRSchedulerState): void {
    if (!s || !Number.isInteger(s.step) || s.step < 0) throw new RangeError(`LRScheduler.loadStateDict: invalid step ${String(s?.step)}`);
    this.#step = s.step;
    this.apply();
  }

  private apply(): void {
    const lr = this.schedule(this.#step);
    if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`LRScheduler: the schedule gave lr ${lr} at step ${this.#step}`);
    this.#lastLr = lr;
    for (const g of this.optimizer.paramGroups) g.lr = typeof g.lrScale === 'number' ? lr * g.lrScale : lr;
  }
}

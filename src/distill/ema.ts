// An exponential moving average of the student's weights (Polyak averaging; the "mean teacher" of
// Tarvainen & Valpola 2017, timm's ModelEmaV2), for `--student-ema <decay>`: after every iteration
//   θ̄ ← d_t·θ̄ + (1 − d_t)·θ,   d_t = min(decay, (1 + t) / (10 + t))   (t = updates so far)
// — the warm-up of TensorFlow's ExponentialMovingAverage(num_updates), so that the first averages
// follow the student instead of its initial weights. Floating-point buffers (BatchNorm running
// statistics) are averaged the same way; integer ones (num_batches_tracked) are copied.
//
// Why (issue 15, "the student does not forget"): on synthetic batches the student's validation
// accuracy wanders as the generator's distribution moves, and the last iterate is often a few points
// below the run's best. The average is a function of the training trajectory alone — no real label
// picks it — so reporting it keeps the rule that the reported student is never chosen on real data.
// The driver evaluates and reports the average; checkpoints hold both (the raw student resumes the
// optimisation, the average resumes the average), so --resume stays exact.
import { keep, noGrad, type Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';

/** What `--student-ema` takes: 0 (off) or a decay in (0, 1). */
const EMA_RANGE = 'expected 0 (off) or a decay in (0, 1), e.g. 0.99';

/**
 * Parses a `--student-ema` value (CLI and bench alike): 0 = off, else a decay in (0, 1). Throws with
 * the accepted range; the caller adds the flag's name.
 */
export function parseEmaDecay(v: string): number {
  const n = v.trim() === '' ? NaN : Number(v);
  if (!(n >= 0 && n < 1)) throw new Error(`${EMA_RANGE}; got '${v}'`);
  return n;
}

const FLOAT = new Set(['float32', 'float64', 'float16', 'bfloat16']);

export class WeightEma {
  /** The averaged tensors, by the model's state-dict names (owned here). */
  readonly shadow: Record<string, Tensor>;
  updates = 0;

  constructor(
    private readonly model: Module,
    readonly decay: number,
  ) {
    // The mechanism's own guard (the flag parsers give the user's message first; 0 means no WeightEma).
    if (!(decay > 0 && decay < 1)) throw new Error(`--student-ema must be in (0, 1) (e.g. 0.99); got ${decay}`);
    this.shadow = noGrad(() => Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, keep(t.detach().clone())])));
  }

  /** The decay of update number `t` (0-based): min(decay, (1 + t) / (10 + t)). */
  decayAt(t: number): number {
    return Math.min(this.decay, (1 + t) / (10 + t));
  }

  /** One update from the model's current weights. */
  update(): void {
    const d = this.decayAt(this.updates);
    const own = this.model.stateDict();
    noGrad(() => {
      for (const [k, s] of Object.entries(this.shadow)) {
        const t = own[k]!;
        if (FLOAT.has(s.dtype)) s.lerp_(t, 1 - d);
        else s.copy_(t);
      }
    });
    this.updates++;
  }

  /** Runs fn with the averaged weights in the model, then puts the model's own weights back. */
  withAverage<T>(fn: () => T): T {
    const own = noGrad(() => Object.fromEntries(Object.entries(this.model.stateDict()).map(([k, t]) => [k, t.detach().clone()])));
    try {
      this.model.loadStateDict(this.shadow);
      return fn();
    } finally {
      this.model.loadStateDict(own);
      for (const t of Object.values(own)) t.dispose();
    }
  }

  /** Leaves the averaged weights in the model (at the end of a run: the reported student). */
  copyIntoModel(): void {
    this.model.loadStateDict(this.shadow);
  }

  /** For checkpoints: the shadow tensors (not copies) and the update count. */
  stateDict(): { tensors: Record<string, Tensor>; updates: number } {
    return { tensors: this.shadow, updates: this.updates };
  }

  loadStateDict(tensors: Record<string, Tensor>, updates: number): void {
    const missing = Object.keys(this.shadow).filter((k) => !tensors[k]);
    if (missing.length > 0) throw new Error(`the checkpoint has no student average for ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''} (was it made without --student-ema?)`);
    noGrad(() => {
      for (const [k, s] of Object.entries(this.shadow)) s.copy_(tensors[k]!);
    });
    this.updates = updates;
  }

  dispose(): void {
    for (const t of Object.values(this.shadow)) t.dispose();
  }
}

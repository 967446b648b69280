// Data-parallel training as PyTorch's DDP does it (issue 16), on libtorch's own c10d (process-group.ts):
//
//   - every rank holds the same replicated models (the student, a generator); each one's parameters
//     are broadcast from rank 0 before their first update, so the ranks start from rank 0's weights;
//   - each rank synthesises its own share of the global batch (its own seed, rank.ts's rankSeed) and
//     back-propagates its own loss; before an optimiser steps (or a gradient clip reads them) the
//     gradients are averaged across the ranks in flat buckets of ~25 MB (DDP's bucket_cap_mb), so every
//     rank applies the same update — the mean-loss gradient of the global batch;
//   - an optimiser of per-rank tensors (`replicated = false`: DeepInversion's input batch) is left alone;
//   - the ranks agree on the clock (the largest elapsed time of any rank), so the time budget, the
//     cosine schedule and "done" are decided the same everywhere; each rank evaluates its share of the
//     validation split (evalShard: the counts are summed); rank 0 alone writes the metrics, samples,
//     result and exported model; every rank checkpoints its own state (its synthetic
//     data differs), and a resume brings every rank back to one common iteration.
//
// Not DDP: the reduction runs after backward (DDP overlaps it with backward through autograd hooks),
// which costs the communication time per step but needs no hook into libtorch's engine; the student's
// buffers (BN running statistics) are broadcast from rank 0 after each iteration's steps (the driver),
// where DDP's broadcast_buffers does it before each forward; a generator's buffers stay each rank's own.
// The one group is global to the process (a training process is one rank), as torch.distributed's.
import { existsSync, readFileSync } from 'node:fs';
import { checkpointPaths, readCheckpointConfig, removeStaleTemps, resolveCheckpoint } from '../export/checkpoint.js';
import { join } from 'node:path';
import { dispose, type Tensor, tensor, noGrad } from '../tensor/tensor.js';
import { setGradientSync, type GradientSync, type Optimizer } from '../nn/optim.js';
import { DDP_BUCKET_BYTES, ProcessGroup, type ProcessGroupOptions } from './process-group.js';

/** A collective failed: another rank is gone or unreachable. */
export class DataParallelError extends Error {
  override name = 'DataParallelError';
}

export class DataParallel implements GradientSync {
  readonly rank: number;
  readonly worldSize: number;
  readonly pg: ProcessGroup;
  readonly bucketBytes: number;
  /** Parameters whose current gradients were already averaged (by a clip), until the next step or zeroGrad. */
  private readonly reduced = new Set<Tensor>();
  /** Optimisers whose parameters were broadcast from rank 0 (once, before their first step). */
  private readonly broadcasted = new WeakSet<Optimizer>();
  /** Collectives run, for tests and the bench. */
  stats = { gradientReductions: 0, broadcasts: 0, collectives: 0, collectiveSeconds: 0, gradientBytes: 0 };

  constructor(o: ProcessGroupOptions & { bucketBytes?: number }) {
    try {
      this.pg = new ProcessGroup(o);
    } catch (e) {
      const where = o.store.kind === 'tcp' ? `rank 0's store at ${o.store.host}:${o.store.port}` : `the store ${o.store.path}`;
      throw new DataParallelError(
        `rank ${o.rank} of ${o.worldSize}: the ranks did not all join at ${where} within ${(o.timeoutMs ?? 300_000) / 1000} s (${(e as Error).message.split('\n')[0]}): start all ${o.worldSize} ranks with the same --world-size, --master-addr and --master-port, rank 0 first reachable from the others`,
      );
    }
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.bucketBytes = o.bucketBytes ?? DDP_BUCKET_BYTES;
  }

  get isMain(): boolean {
    return this.rank === 0;
  }

  beforeRead(params: readonly Tensor[]): void {
    this.reduce(params.filter((p) => !this.reduced.has(p)));
    for (const p of params) this.reduced.add(p);
  }

  beforeStep(opt: Optimizer): void {
    if (!opt.replicated) return;
    const params = opt.parameters();
    if (!this.broadcasted.has(opt)) {
      this.broadcastFromMain(params);
      this.broadcasted.add(opt);
    }
    this.reduce(params.filter((p) => !this.reduced.has(p)));
    for (const p of params) this.reduced.delete(p);
  }

  afterZero(params: readonly Tensor[]): void {
    for (const p of params) this.reduced.delete(p);
  }

  /** Rank 0's values of `tensors` on every rank (in place). */
  broadcastFromMain(tensors: readonly Tensor[]): void {
    if (tensors.length === 0) return;
    this.collective('broadcast', () => noGrad(() => this.pg.broadcast(tensors, 0)));
    this.stats.broadcasts++;
  }

  /**
   * Runs a collective; its failure (a rank died, hung past the timeout or cannot be reached) becomes
   * an error that says what happened and what to do, instead of Gloo's transport message alone.
   */
  private collective<T>(what: string, f: () => T): T {
    const t0 = performance.now();
    try {
      return f();
    } catch (e) {
      throw new DataParallelError(
        `rank ${this.rank} of ${this.worldSize}: the ${what} with the other ranks failed (${(e as Error).message.split('\n')[0]}): another rank stopped, hung for longer than the timeout, or cannot be reached. Start every rank again with --resume to continue from the last checkpoint all of them have.`,
      );
    } finally {
      this.stats.collectives++;
      this.stats.collectiveSeconds += (performance.now() - t0) / 1000;
    }
  }

  /** The largest of each value over the ranks (the agreed clock; any rank's NaN flag). */
  agreeMax(values: readonly number[]): number[] {
    return this.agree(values, 'max');
  }

  /** The smallest of each value over the ranks (the iteration every rank can resume from). */
  agreeMin(values: readonly number[]): number[] {
    return this.agree(values, 'min');
  }

  /** The sum of each value over the ranks (exact for counts below 2^53). */
  agreeSum(values: readonly number[]): number[] {
    return this.agree(values, 'sum');
  }

  /** The mean of each value over the ranks (a loss to report for the global batch). */
  agreeMean(values: readonly number[]): number[] {
    return this.agree(values, 'avg');
  }

  /** Evaluation split between the ranks (evaluateClassifier's shard). */
  get evalShard(): { rank: number; world: number; sum: (v: number[]) => number[] } {
    return { rank: this.rank, world: this.worldSize, sum: (v) => this.agreeSum(v) };
  }

  /** `values` reduced over the ranks by `op`, in float64. */
  private agree(values: readonly number[], op: 'max' | 'min' | 'sum' | 'avg'): number[] {
    const t = tensor([...values], { dtype: 'float64' });
    try {
      this.collective('agreement', () => this.pg.allReduce(t, op));
      return t.toArray() as number[];
    } finally {
      t.dispose();
    }
  }

  barrier(): void {
    this.collective('barrier', () => this.pg.barrier());
  }

  private reduce(params: readonly Tensor[]): void {
    const grads: Tensor[] = [];
    try {
      for (const p of params) {
        const g = p.grad; // a new handle on the gradient itself: reduced in place
        if (g !== null) grads.push(g);
      }
      if (grads.length === 0) return;
      this.collective('gradient all-reduce', () => this.pg.allReduceBuckets(grads, 'avg', this.bucketBytes));
      for (const g of grads) this.stats.gradientBytes += g.numel() * 4;
      this.stats.gradientReductions++;
    } finally {
      dispose(grads);
    }
  }

  destroy(): void {
    this.pg.destroy();
  }
}

let current: DataParallel | null = null;

/** This process's data-parallel group, or null (a single-process run). */
export function dataParallel(): DataParallel | null {
  return current;
}

/** Joins the group (blocks until every rank has) and installs the gradient hook. One per process. */
export function initDataParallel(o: ProcessGroupOptions & { bucketBytes?: number }): DataParallel {
  if (current) throw new Error('this process already is a data-parallel rank');
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1) throw new Error(`world size must be a positive integer (got ${o.worldSize})`);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) throw new Error(`rank must be in [0, ${o.worldSize - 1}] (got ${o.rank})`);
  current = new DataParallel(o);
  setGradientSync(current);
  return current;
}

/** Leaves the group (after a successful run; a failed collective leaves Gloo's workers blocked, so exit instead). */
export function shutdownDataParallel(): void {
  if (!current) return;
  setGradientSync(null);
  current.destroy();
  current = null;
}

/** The seed rank `rank` synthesises with: rank 0 keeps the run's seed, so a 1-rank run is a single-process run. */
export function rankSeed(seed: number, rank: number): number {
  return rank === 0 ? seed : seed + 7_919 * rank;
}

/**
 * A run's global batch split between the ranks (each synthesises its share), after checking that it
 * splits, and that a resumed run keeps its number of ranks (config.json's world_size): every rank's
 * synthetic data and checkpoint are its own.
 */
export function rankBatch(globalBatch: number, out: string, resume: boolean | undefined): { batch: number; world: number; config: { world_size?: number } } {
  const dp = dataParallel();
  const world = dp?.worldSize ?? 1;
  if (globalBatch % world !== 0) throw new Error(`--batch ${globalBatch} is the global batch: it must divide into ${world} ranks`);
  const savedConfig = join(out, 'config.json');
  if (resume && existsSync(savedConfig)) {
    const saved = (JSON.parse(readFileSync(savedConfig, 'utf8')) as { world_size?: number }).world_size ?? 1;
    if (saved !== world) {
      throw new Error(`--resume: ${out} was run as ${saved} rank${saved === 1 ? '' : 's'} and this is ${world}: resume it with ${saved === 1 ? 'one process (no --nproc / --world-size)' : `${saved} ranks (--nproc ${saved} or --world-size ${saved})`} — every rank's synthetic data and checkpoint are its own`);
    }
  }
  return { batch: globalBatch / world, world, config: dp ? { world_size: world } : {} };
}

/**
 * The checkpoint a --resume of the run in `out` starts from (the distillation driver's and training's):
 * what an interrupted write left behind goes first (rank 0, while the others wait), a damaged
 * checkpoint falls back to the previous one (resolveCheckpoint), and every rank resumes at one point
 * (commonCheckpoint). No checkpoint at all is an error.
 */
export function resumeCheckpoint(out: string, last: string, key: 'iteration' | 'epoch', log: (line: string) => void): string {
  const dp = dataParallel();
  const main = (dp?.rank ?? 0) === 0;
  if (main) for (const p of removeStaleTemps(out, 3)) log(`removed ${p} (left by an interrupted write)`);
  dp?.barrier();
  if (resolveCheckpoint(last, log) === 'none') {
    throw new Error(`--resume: ${out} has no checkpoint${main ? '' : ` of rank ${dp!.rank}`} to resume from (${checkpointPaths(last).weights} not found); start the run without --resume`);
  }
  return commonCheckpoint(last, key, log);
}

/**
 * The checkpoint this rank resumes from so that every rank resumes at one iteration: its own
 * `last`, or (a rank killed while the others were still writing left them one checkpoint behind) its
 * `last.prev`, which must then be at the iteration (or epoch: `key`) the others have. Single process: `last`.
 */
function commonCheckpoint(last: string, key: 'iteration' | 'epoch', log: (line: string) => void): string {
  const dp = dataParallel();
  const progressOf = (base: string): number => readCheckpointConfig<{ state: Record<string, number> }>(base).state[key] ?? 0;
  if (!dp) return last;
  const mine = progressOf(last);
  const common = dp.agreeMin([mine])[0]!;
  if (mine === common) return last;
  const prev = `${last}.prev`;
  const before = existsSync(checkpointPaths(prev).weights) ? progressOf(prev) : undefined;
  if (before !== common) {
    throw new Error(`--resume: rank ${dp.rank}'s checkpoints are at ${mine} and ${before ?? 'none'}, another rank's at ${common}: the ranks cannot be brought to one point`);
  }
  log(`rank ${dp.rank} was one checkpoint ahead of another rank: resuming from its previous checkpoint (${key} ${common})`);
  return prev;
}

/** Where rank `rank` keeps its checkpoint: rank 0 (and a single process) checkpoints/<name>, rank r checkpoints/rank-r/<name>. */
export function rankCheckpointBase(out: string, rank: number, name = 'last'): string {
  return rank === 0 ? join(out, 'checkpoints', name) : join(out, 'checkpoints', `rank-${rank}`, name);
}

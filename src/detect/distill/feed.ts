// The generator in a second process (`dfkd distill --task detect --generator-process`).
//
// Why: on the 2-core machines this project targets, one training process runs best at 1 intra-op
// thread (measured: 2 threads were ~2× slower per step on these small models), so a run uses one core.
// When the synthesis does not read the student (tgan at λ_adv 0), the generator's work — its own
// step (a backward through the teacher) and the fresh canvases of the other student steps — can run
// in a second process while the student trains on the canvases it has already made.
//
// Protocol (files in <run>/feed/, written atomically, so a reader never sees half a file):
// - batch-<it>-<k>.safetensors: canvases `x` for student step k of iteration it (k = 0 carries the
//   synthesis logs in its metadata); the consumer deletes each after reading it. The producer runs at
//   most `ahead` iterations ahead: it waits while that many iterations of batches are unread.
// - request-<n> / state-<n>.safetensors: the consumer asks for the method's state after n iterations
//   (for checkpoints and sample grids); the producer keeps the states of its last ahead + 2 iterations.
// - error.txt: the producer's failure, reported by the consumer; stop: the consumer is done.
//
// Exactness: the producer builds the teacher, the student and the method in the same order as the
// single-process run and re-seeds libtorch's generator from (seed, iteration) before each iteration,
// and the student steps draw no random numbers, so the canvases — and the trained student — are the
// same as without --generator-process (tested), and --resume stays exact.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dispose, manualSeed, tidy, type Tensor } from '../../tensor/tensor.js';
import { loadTensors, saveTensors } from '../../export/checkpoint.js';
import { writeFileAtomic } from '../../util/fs.js';
import { iterationSeed } from '../../distill/driver.js';
import type { MethodState } from '../../distill/types.js';
import type { DetectDistillContext, DetectDistillMethod } from './methods.js';

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread for `ms` (the loops here are synchronous, like the training loop). */
export const sleepMs = (ms: number): void => void Atomics.wait(sleepCell, 0, 0, ms);

export const feedFiles = {
  batch: (dir: string, it: number, k: number): string => join(dir, `batch-${it}-${k}.safetensors`),
  request: (dir: string, n: number): string => join(dir, `request-${n}`),
  state: (dir: string, n: number): string => join(dir, `state-${n}.safetensors`),
  error: (dir: string): string => join(dir, 'error.txt'),
  stop: (dir: string): string => join(dir, 'stop'),
};

/** What the producer process needs, passed as JSON on its command line. */
export interface ProducerArgs {
  dir: string;
  /** The run's config (detect/distill/run.ts DetectDistillConfig), to build teacher, student and method alike. */
  cfg: unknown;
  /** The first iteration to produce (the consumer's, > 0 on --resume). */
  start: number;
  /** With start > 0: the checkpoint whose `method.*` tensors and metadata the producer starts from. */
  resumeFrom?: string;
  threads: number;
  ahead: number;
}

/** Batches produced per iteration: one per student step when the method makes fresh canvases, else one. */
const batchesPerIteration = (method: Pick<DetectDistillMethod, 'studentStepsPerIteration' | 'extraBatch'>): number =>
  method.extraBatch ? method.studentStepsPerIteration : 1;

/**
 * The producer's writes never create folders: its folder gone means the run that started it is over
 * (killed, and a resumed run has cleared <run>/feed); recreating it would leave it behind. A write into
 * a removed folder fails with ENOENT instead, and the producer exits.
 */
export const PRODUCER_WRITE = { makeParents: false } as const;

function methodStateFile(path: string, s: MethodState): void {
  saveTensors(path, s.tensors, { meta: JSON.stringify(s.meta) }, PRODUCER_WRITE);
}

function readMethodState(path: string): MethodState {
  const { tensors, metadata } = loadTensors(path);
  return { tensors, meta: JSON.parse(metadata.meta ?? '{}') as Record<string, unknown> };
}

/**
 * The producer's loop (the second process): synthesis steps and fresh canvases, iteration after
 * iteration, until `stop` appears or the parent process is gone. Errors are written to error.txt by
 * the caller (generator-main.ts).
 */
export function runProducer(ctx: DetectDistillContext, method: DetectDistillMethod, seed: number, args: Pick<ProducerArgs, 'dir' | 'start' | 'ahead'>): void {
  const { dir, ahead } = args;
  const perIt = batchesPerIteration(method);
  const parent = process.ppid;
  const snapshots = new Map<number, MethodState>();
  const keepSnapshot = (n: number): void => {
    snapshots.set(n, method.stateDict());
    for (const old of [...snapshots.keys()].filter((m) => m < n - ahead - 2)) {
      dispose(snapshots.get(old)!.tensors);
      snapshots.delete(old);
    }
  };
  // Its folder gone: the run that started it is over (killed, and a resumed run has cleared the feed
  // folder). Checked before each write; a folder removed between the check and the write makes that
  // write fail (PRODUCER_WRITE) rather than recreate the folder.
  const stopped = (): boolean => existsSync(feedFiles.stop(dir)) || process.ppid !== parent || !existsSync(dir);
  const serveRequests = (): void => {
    for (const f of readdirSync(dir)) {
      const m = /^request-(\d+)$/.exec(f);
      if (!m) continue;
      const n = Number(m[1]);
      const s = snapshots.get(n);
      if (!s) throw new Error(`the training process asked for the generator state after ${n} iterations; kept: ${[...snapshots.keys()].join(', ') || 'none'}`);
      methodStateFile(feedFiles.state(dir, n), s);
      rmSync(join(dir, f), { force: true });
    }
  };
  const unread = (): number => readdirSync(dir).filter((f) => f.startsWith('batch-') && f.endsWith('.safetensors')).length;
  keepSnapshot(args.start);
  for (let it = args.start; ; it++) {
    for (;;) {
      if (stopped()) return;
      if (unread() < ahead * perIt) break;
      serveRequests();
      sleepMs(2);
    }
    if (stopped()) return;
    manualSeed(iterationSeed(seed, it));
    tidy(() => {
      const b = method.synthesize(ctx, it);
      if (stopped()) return;
      saveTensors(feedFiles.batch(dir, it, 0), { x: b.x }, { logs: JSON.stringify(b.logs) }, PRODUCER_WRITE);
      for (let k = 1; k < perIt; k++) saveTensors(feedFiles.batch(dir, it, k), { x: method.extraBatch!(ctx, k) }, undefined, PRODUCER_WRITE);
    });
    keepSnapshot(it + 1);
    serveRequests();
  }
}

/** The training process's side: starts the producer on first use, hands out its batches and states. */
export class GeneratorProcess {
  private child: ChildProcess | null = null;
  private readonly timeoutMs: number;
  /** This producer's own folder (set when it starts). */
  private dir = '';
  /** Seconds the training process spent waiting for the producer. */
  waitedSeconds = 0;
  constructor(
    private readonly args: Omit<ProducerArgs, 'start' | 'resumeFrom'>,
    /** The checkpoint a resumed run starts from (its method state seeds the producer). */
    private readonly resumeCheckpoint: string,
    opts: { timeoutSeconds?: number } = {},
  ) {
    this.timeoutMs = (opts.timeoutSeconds ?? 300) * 1000;
  }

  get started(): boolean {
    return this.child !== null;
  }

  private start(first: number): void {
    // Each producer gets a folder of its own under <run>/feed/: a producer left running by a killed
    // training process (it notices within one synthesis step) must not drop its canvases into the
    // folder of the resumed run's producer.
    rmSync(this.args.dir, { recursive: true, force: true });
    this.dir = join(this.args.dir, `${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(this.dir, { recursive: true });
    const a: ProducerArgs = { ...this.args, dir: this.dir, start: first, ...(first > 0 ? { resumeFrom: this.resumeCheckpoint } : {}) };
    const script = fileURLToPath(new URL('./generator-main.js', import.meta.url));
    // The crash tests' pause hook (util/fs.ts faultPoint) is for the training process, not its producer.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DFKD_FAULT_')));
    this.child = spawn(process.execPath, [script, JSON.stringify(a)], { stdio: ['ignore', 'ignore', 'inherit'], env });
  }

  private waitFor(path: string, what: string): void {
    const t0 = performance.now();
    const err = feedFiles.error(this.dir);
    while (!existsSync(path)) {
      if (existsSync(err)) throw new Error(`the generator process failed: ${readFileSync(err, 'utf8').trim()}`);
      if (performance.now() - t0 > this.timeoutMs) {
        throw new Error(`the generator process sent nothing in ${this.timeoutMs / 1000} s while the run waited for ${what} (it may have been killed, e.g. out of memory)`);
      }
      sleepMs(1);
    }
    this.waitedSeconds += (performance.now() - t0) / 1000;
  }

  /** Canvases for student step k of iteration it (the synthesis logs with k = 0). The caller owns x. */
  batch(it: number, k: number): { x: Tensor; logs: Record<string, number> } {
    if (!this.child) this.start(it);
    const path = feedFiles.batch(this.dir, it, k);
    this.waitFor(path, `the canvases of iteration ${it}, step ${k}`);
    const { tensors, metadata } = loadTensors(path);
    rmSync(path, { force: true });
    const x = tensors.x;
    if (!x) throw new Error(`${path}: no canvases in the generator process's batch`);
    return { x, logs: JSON.parse(metadata.logs ?? '{}') as Record<string, number> };
  }

  /** The method's state after n iterations (the caller disposes its tensors); null before the producer started. */
  methodState(n: number): MethodState | null {
    if (!this.child) return null;
    const { dir } = this;
    const path = feedFiles.state(dir, n);
    writeFileAtomic(feedFiles.request(dir, n), '');
    this.waitFor(path, `the generator state after ${n} iterations`);
    const s = readMethodState(path);
    rmSync(path, { force: true });
    return s;
  }

  /** Stops the producer and removes the feed folder. */
  close(): void {
    if (this.child) {
      try {
        writeFileSync(feedFiles.stop(this.dir), '');
      } catch {
        // the folder may be gone already
      }
      this.child.kill();
      this.child = null;
    }
    rmSync(this.args.dir, { recursive: true, force: true });
  }
}

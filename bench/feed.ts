// bench feed: detection tgan in one process vs with --generator-process (detect/distill/feed.ts), the
// same run (teacher, student, defaults, seed, iterations) timed alternately in rounds, 1 intra-op
// thread per process: seconds per iteration after the first few (the generator process's start-up
// and the first evaluation are left out), ratio of medians, and whether the two students are equal.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads } from '../src/tensor/tensor.js';
import { loadTensors } from '../src/export/checkpoint.js';
import { runDetectDistillation, type DetectDistillConfig } from '../src/detect/distill/run.js';
import { BENCH_DIR, median, report } from './common.js';

export interface FeedBenchOptions {
  teacher: string;
  student: string;
  iterations: number;
  rounds: number;
  batch: number;
  tiny?: boolean;
}

/** The largest absolute difference between two students' weights (0: the same run). */
function maxWeightDiff(a: string, b: string): number {
  const x = loadTensors(join(a, 'model.safetensors')).tensors;
  const y = loadTensors(join(b, 'model.safetensors')).tensors;
  let d = 0;
  for (const [k, t] of Object.entries(x)) d = Math.max(d, t.sub(y[k]!).abs().max().item());
  return d;
}

export async function benchFeed(o: FeedBenchOptions): Promise<string> {
  setNumThreads(1);
  const name = `feed${o.tiny ? '-tiny' : ''}`;
  const runs = join(BENCH_DIR, 'runs', name);
  const skip = Math.min(5, o.iterations - 1);
  const cfg = (gp: boolean): DetectDistillConfig => ({
    task: 'detect', teacher: o.teacher, student: o.student, method: 'tgan', hparams: {},
    loop: { iterations: o.iterations, minutes: Infinity, batchSize: o.batch, seed: 0, evalEvery: o.iterations, sampleEvery: o.iterations, checkpointEvery: o.iterations, cosine: true, clipNorm: 5 },
    ...(gp ? { generatorProcess: true } : {}),
  });
  const perIteration: Record<'one' | 'two', number[]> = { one: [], two: [] };
  for (let r = 0; r < o.rounds; r++) {
    for (const mode of ['one', 'two'] as const) {
      const out = join(runs, `${mode}-${r}`);
      rmSync(out, { recursive: true, force: true });
      const at: number[] = [];
      runDetectDistillation(cfg(mode === 'two'), out, { onIteration: (it, _t, _l, s) => void (at[it] = s) });
      const secs = (at[o.iterations]! - at[skip]!) / (o.iterations - skip);
      perIteration[mode].push(secs);
      process.stdout.write(`round ${r + 1}/${o.rounds} ${mode === 'one' ? 'one process' : '--generator-process'}: ${secs.toFixed(3)} s/iteration\n`);
    }
  }
  const diff = maxWeightDiff(join(runs, 'one-0'), join(runs, 'two-0'));
  const [one, two] = [median(perIteration.one), median(perIteration.two)];
  return report({
    name,
    config: { ...o, threadsPerProcess: 1, timedIterations: `${skip + 1}..${o.iterations}` },
    results: [
      { mode: 'one process', s_per_iteration: one, iterations_per_s: 1 / one, rounds: perIteration.one.map((s) => +s.toFixed(3)).join(' ') },
      { mode: '--generator-process', s_per_iteration: two, iterations_per_s: 1 / two, rounds: perIteration.two.map((s) => +s.toFixed(3)).join(' ') },
    ],
    summary: { speedup: one / two, student_max_abs_diff: diff },
  });
}

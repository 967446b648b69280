// bench ddp (issue 16): the demo's run (tgan, the shipped MNIST ViT → vit-student-28, batch 64) as
// 1 process × 1 thread, 1 process × 2 threads and 2 data-parallel ranks × 1 thread (`--nproc 2`),
// timed over a fixed number of iterations in alternating rounds (iterations/s from the run's own
// clock: start-up, teacher loading and the final evaluation are left out); then, at the demo's wall
// budget (5 minutes, its evaluation and checkpoint cadence), test accuracy of the best single-process
// setting against 2 ranks. summary.speedup_2ranks = 2 ranks' median iterations/s over the best
// single-process setting's. The machine's own ceiling is measured too: two independent 1-thread runs
// side by side at half the batch each (no communication at all), whose slower one bounds what 2 ranks
// can reach when the cores share caches and memory bandwidth (summary.ceiling_2ranks).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BENCH_DIR, median, report } from './common.js';

export interface DdpBenchOptions {
  teacher: string;
  student: string;
  method: string;
  batch: number;
  iterations: number;
  rounds: number;
  /** The wall budget of the accuracy runs (0: no accuracy runs). */
  minutes: number;
  seed: number;
  tiny?: boolean;
}

const MODES = [
  { mode: '1 process × 1 thread', args: ['--threads', '1'] },
  { mode: '1 process × 2 threads', args: ['--threads', '2'] },
  { mode: '2 ranks × 1 thread', args: ['--nproc', '2', '--threads', '2'] },
] as const;

interface RunResult {
  iterations: number;
  seconds: number;
  iterations_per_second: number;
  test_acc: number;
  retention: number;
}

function distill(cli: string, args: string[], out: string): RunResult {
  rmSync(out, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [cli, 'distill', ...args, '--out', out, '--no-report'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`dfkd distill ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as RunResult;
}

function distillAsync(cli: string, args: string[], out: string): Promise<RunResult> {
  rmSync(out, { recursive: true, force: true });
  return new Promise((ok, fail) => {
    const c = spawn(process.execPath, [cli, 'distill', ...args, '--out', out, '--no-report'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    c.on('exit', (code) => (code === 0 ? ok(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as RunResult) : fail(new Error(`dfkd distill ${args.join(' ')} failed (${code}): ${err}`))));
  });
}

const CEILING = 'ceiling: 2 independent 1-thread runs side by side, batch / 2 each';

export async function benchDdp(o: DdpBenchOptions): Promise<string> {
  const cli = resolve(BENCH_DIR, '..', 'dist/src/cli/main.js');
  const name = `ddp${o.tiny ? '-tiny' : ''}`;
  const runs = join(BENCH_DIR, 'runs', name);
  const base = ['--teacher', o.teacher, '--student', o.student, '--method', o.method, '--batch', String(o.batch), '--seed', String(o.seed)];
  const never = String(1e9);
  const ips: Record<string, number[]> = Object.fromEntries(MODES.map((m) => [m.mode, []]));
  for (let r = 0; r < o.rounds; r++) {
    // Alternate the order too, so neither mode always runs on a machine the other just warmed.
    for (const m of r % 2 === 0 ? MODES : [...MODES].reverse()) {
      const res = distill(cli, [...base, ...m.args, '--iterations', String(o.iterations), '--eval-every', never, '--sample-every', never, '--checkpoint-every', never], join(runs, `speed-${r}-${m.args.join('')}`));
      ips[m.mode]!.push(res.iterations_per_second);
      process.stdout.write(`round ${r + 1}/${o.rounds} ${m.mode}: ${res.iterations_per_second.toFixed(3)} it/s\n`);
    }
    const pair = ['a', 'b'].map((k) =>
      distillAsync(cli, [...base.map((v, i) => (base[i - 1] === '--batch' ? String(o.batch / 2) : v)), '--threads', '1', '--iterations', String(o.iterations), '--eval-every', never, '--sample-every', never, '--checkpoint-every', never], join(runs, `ceiling-${r}-${k}`)),
    );
    const slower = Math.min(...(await Promise.all(pair)).map((x) => x.iterations_per_second));
    (ips[CEILING] ??= []).push(slower);
    process.stdout.write(`round ${r + 1}/${o.rounds} ${CEILING}: ${slower.toFixed(3)} it/s (the slower)\n`);
  }
  const speed = [...MODES.map((m) => m.mode), CEILING].map((mode) => ({ mode, iterations_per_s: median(ips[mode]!), rounds: ips[mode]!.map((v) => +v.toFixed(3)).join(' ') }));
  const [one1, one2, two, ceiling] = speed.map((s) => s.iterations_per_s) as [number, number, number, number];
  const bestSingle = one1 >= one2 ? MODES[0] : MODES[1];

  const accuracy: Record<string, unknown>[] = [];
  if (o.minutes > 0) {
    // The demo's cadence (src/cli/demo.ts): evaluation every 25 iterations, samples and checkpoints every 50.
    const demo = [...base, '--minutes', String(o.minutes), '--eval-every', '25', '--sample-every', '50', '--checkpoint-every', '50'];
    for (const m of [bestSingle, MODES[2]]) {
      const res = distill(cli, [...demo, ...m.args], join(runs, `accuracy-${m.args.join('')}`));
      process.stdout.write(`${o.minutes} min ${m.mode}: test ${(100 * res.test_acc).toFixed(2)}%, retention ${(100 * res.retention).toFixed(1)}%, ${res.iterations} iterations\n`);
      accuracy.push({ mode: `${m.mode}, ${o.minutes} min`, iterations_per_s: res.iterations_per_second, iterations: res.iterations, test_acc: res.test_acc, retention: res.retention });
    }
  }
  return report({
    name,
    config: { ...o, modes: MODES.map((m) => `${m.mode}: ${m.args.join(' ')}`), timed: 'the run\'s own clock (result.json seconds): no start-up, no final evaluation' },
    results: [...speed, ...accuracy],
    summary: {
      speedup_2ranks: two / Math.max(one1, one2),
      ceiling_2ranks: ceiling / Math.max(one1, one2),
      best_single_process: bestSingle.mode,
      speedup_2threads_vs_1: one2 / one1,
      ...(accuracy.length === 2 ? { retention_single: accuracy[0]!.retention, retention_2ranks: accuracy[1]!.retention } : {}),
    },
  });
}

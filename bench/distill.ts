// bench distill: every method and reference on one dataset — same teacher, student, seed and time
// budget — student test accuracy, retention, wall time, iterations and iterations/s, plus an
// accuracy-vs-time curve per method (validation split, evaluation only). bench ablation: tgan with
// each loss term removed in turn, same seed and budget.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runDistillation, type DistillResult, type StudentInit } from '../src/distill/run.js';
import { METHODS } from '../src/distill/methods/index.js';
import type { LoopConfig } from '../src/distill/loop.js';
import { writeComparisonReport } from '../src/report/html.js';
import { BENCH_DIR, benchRunsDir, canonical, report, runInParallel } from './common.js';

export interface DistillBenchOptions {
  dataset: string;
  teacher: string;
  student: string;
  methods: string[];
  minutes: number;
  batch: number;
  seed: number;
  /**
   * Seeds to run every method with (issue 17: figures that come back): each row then reports
   * test_acc_mean/std and retention_mean/std over them, with every seed's figures in per_seed.
   * Without it, the one `seed` (and the run folders are named by method alone, as before).
   */
  seeds?: number[];
  /** The result file's name (default distill-<dataset>): e.g. distill-fashion-lenet for the LeNet pair. */
  name?: string;
  /** How every student starts (default auto: weight selection where the pair allows it). */
  studentInit?: StudentInit;
  /** The loop's --student-ema decay for every run (absent: off; recorded in each run's loop config). */
  studentEma?: number;
  tiny?: boolean;
  /** Per-method hyper-parameter overrides (e.g. the tuned values), recorded in the result file. */
  hparams?: Record<string, Record<string, number | boolean>>;
  /**
   * Runs at once, each a child process with 1 thread (two 1-thread runs on 2 cores do about the work
   * of one 2-thread run each, so a table takes half the wall time). Default 1: in this process.
   */
  jobs?: number;
  /**
   * Intra-op threads of the runs made in this process (recorded in the result's config; `--jobs`
   * children always run at 1). Runs found finished are reused whatever threads they ran at.
   */
  threads?: number;
  /** Child mode: run this one method (or ablation variant) into its run folder, write no table. */
  only?: string;
}

/** How the runs a bench makes were threaded, for its result's config: `--jobs` children at 1, else `threads`. */
function runThreads(o: Pick<DistillBenchOptions, 'jobs' | 'threads'>): { threads_per_run: number | null; jobs: number } {
  const jobs = o.jobs ?? 1;
  return { threads_per_run: jobs > 1 ? 1 : o.threads ?? null, jobs };
}

export function loopConfig(o: Pick<DistillBenchOptions, 'tiny' | 'minutes' | 'batch' | 'seed' | 'studentEma'>): LoopConfig {
  // Long budgets evaluate half as often (the evaluations count against the budget).
  const long = !o.tiny && o.minutes >= 10;
  return {
    iterations: o.tiny ? 2 : Number.MAX_SAFE_INTEGER,
    minutes: o.tiny ? 5 : o.minutes,
    batchSize: o.batch,
    seed: o.seed,
    evalEvery: o.tiny ? 1 : long ? 50 : 25,
    sampleEvery: o.tiny ? 2 : long ? 200 : 100,
    checkpointEvery: o.tiny ? 2 : long ? 50 : 100,
    cosine: true,
    clipNorm: 5,
    ...(o.studentEma ? { studentEma: o.studentEma } : {}),
  };
}

/**
 * The result of a finished run in `out` whose recorded configuration — teacher, student, method, every
 * resolved hyper-parameter, the loop and the student init — is the one asked for; null otherwise. Such
 * a run is reused rather than run again (an interrupted table picks up where it stopped; runs made in
 * parallel are collected).
 */
export function finishedRun(
  out: string,
  want: { teacher: string; student: string; method: string; hparams: Record<string, number | boolean>; loop: LoopConfig; studentInit: StudentInit },
): DistillResult | null {
  const cfgFile = join(out, 'config.json');
  const resFile = join(out, 'result.json');
  if (!existsSync(cfgFile) || !existsSync(resFile) || statSync(resFile).mtimeMs < statSync(cfgFile).mtimeMs) return null;
  try {
    const c = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    const defaults = METHODS[want.method]?.defaults ?? {};
    const same =
      c.teacher === want.teacher &&
      c.student === want.student &&
      c.method === want.method &&
      (c.studentInit ?? 'auto') === want.studentInit &&
      canonical(c.loop) === canonical(want.loop) &&
      canonical(c.method_hparams) === canonical({ ...defaults, ...want.hparams });
    return same ? (JSON.parse(readFileSync(resFile, 'utf8')) as DistillResult) : null;
  } catch {
    return null;
  }
}

function curve(runDir: string): [number, number][] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { seconds: number; val_acc: number })
    .map((r) => [r.seconds, r.val_acc]);
}

function runOne(
  o: DistillBenchOptions,
  method: string,
  label: string,
  hparams: Record<string, number | boolean>,
  runsDir: string,
  studentInit: StudentInit = 'auto',
  seed = o.seed,
): { result: DistillResult; curve: [number, number][] } {
  const out = join(runsDir, label);
  const loop = loopConfig({ ...o, seed });
  const done = finishedRun(out, { teacher: o.teacher, student: o.student, method, hparams, loop, studentInit });
  if (done) {
    process.stderr.write(`\n== ${label}: reusing the finished run in ${out} (same configuration): test ${(100 * done.test_acc).toFixed(2)}%\n`);
    return { result: done, curve: curve(out) };
  }
  process.stderr.write(`\n== ${label}: ${method} ${JSON.stringify(hparams)} student-init ${studentInit} (${o.tiny ? 'tiny' : `${o.minutes} min`})\n`);
  const result = runDistillation({ teacher: o.teacher, student: o.student, method, hparams, loop, studentInit }, out, {
    onEval: (row) => process.stderr.write(`  it ${row.iteration} ${row.seconds.toFixed(0)} s: val ${(100 * (row.val_acc ?? 0)).toFixed(2)}%\n`),
  })!; // a single process: always rank 0's result
  process.stderr.write(`  test ${(100 * result.test_acc).toFixed(2)}% retention ${(100 * result.retention).toFixed(2)}% (${result.iterations} it)\n`);
  return { result, curve: curve(out) };
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

/** A `--only` child's label (runLabel's inverse): the method or variant, and its seed (`@seed`, else the default). */
function parseOnly(label: string, defaultSeed: number): { name: string; seed: number } {
  const [name, s] = label.split('@');
  return { name: name!, seed: s === undefined ? defaultSeed : Number(s) };
}

/** A run's label: the method alone for a one-seed table (the folders of earlier tables), else method@seed. */
function runLabel(o: DistillBenchOptions, method: string, seed: number): string {
  return o.seeds ? `${method}@${seed}` : method;
}

/** A method's row over its seeds' runs: means and standard deviations, and every seed's own figures. */
export function seedRow(
  method: string,
  runs: { seed: number; result: DistillResult; curve: [number, number][] }[],
): Record<string, unknown> {
  const acc = meanStd(runs.map((r) => r.result.test_acc));
  const ret = meanStd(runs.map((r) => r.result.retention));
  // The student reported is the final iterate; how far its last validation figure fell from the best.
  const best = runs.map((r) => Math.max(...r.curve.map(([, v]) => v)));
  const final = runs.map((r) => r.curve[r.curve.length - 1]?.[1] ?? Number.NaN);
  const r0 = runs[0]!.result;
  return {
    method, teacher: r0.teacher, student: r0.student, data_free: r0.data_free, student_init: r0.student_init,
    test_acc: acc.mean, retention: ret.mean,
    test_acc_mean: acc.mean, test_acc_std: acc.std, retention_mean: ret.mean, retention_std: ret.std,
    seeds: runs.map((r) => r.seed),
    best_val_acc_mean: meanStd(best).mean, final_val_acc_mean: meanStd(final).mean,
    seconds: meanStd(runs.map((r) => r.result.seconds)).mean,
    iterations: meanStd(runs.map((r) => r.result.iterations)).mean,
    iterations_per_second: meanStd(runs.map((r) => r.result.iterations_per_second)).mean,
    collapsed_runs: runs.filter((r) => r.result.collapse.collapsed_rows > 0).length,
    per_seed: runs.map((r, i) => ({ seed: r.seed, test_acc: r.result.test_acc, retention: r.result.retention, iterations: r.result.iterations, best_val_acc: best[i], final_val_acc: final[i] })),
  };
}

export async function benchDistill(o: DistillBenchOptions): Promise<string> {
  const name = o.name ?? `distill-${o.dataset}${o.tiny ? '-tiny' : ''}`;
  const runsDir = benchRunsDir(name);
  const seeds = o.seeds ?? [o.seed];
  const one = (method: string, seed: number): ReturnType<typeof runOne> =>
    runOne(o, method, runLabel(o, method, seed), o.hparams?.[method] ?? {}, runsDir, o.studentInit ?? 'auto', seed);
  if (o.only) {
    const only = parseOnly(o.only, o.seed);
    return one(only.name, only.seed).result.method;
  }
  const labels = o.methods.flatMap((m) => seeds.map((s) => runLabel(o, m, s)));
  // every run beside another (a filler after the last wave), so that no seed's budget buys more iterations
  const fillers = (o.jobs ?? 1) > 1 ? await runInParallel(labels, o.jobs!, process.argv.slice(1), { filler: true }) : 0;
  const rows: Record<string, unknown>[] = [];
  const curves: { name: string; points: [number, number][] }[] = [];
  let teacherAcc = 0;
  for (const method of o.methods) {
    const runs = seeds.map((seed) => ({ seed, ...one(method, seed) }));
    teacherAcc = runs[0]!.result.teacher_test_acc;
    rows.push(seedRow(method, runs));
    for (const r of runs) curves.push({ name: seeds.length > 1 ? `${method} (seed ${r.seed})` : method, points: r.curve });
  }
  const dataFree = rows.filter((r) => r.data_free && r.method !== 'noise');
  const best = dataFree.reduce<Record<string, unknown> | null>((a, r) => (a === null || (r.retention as number) > (a.retention as number) ? r : a), null);
  const file = report({
    name,
    config: {
      dataset: o.dataset, teacher: o.teacher, student: o.student, minutes_per_method: o.minutes, batch: o.batch, seeds,
      student_init: o.studentInit ?? 'auto', hparams: o.hparams ?? {}, ...(o.studentEma ? { student_ema: o.studentEma } : {}), ...runThreads(o), filler_runs: fillers,
    },
    results: rows,
    summary: { teacher_acc: teacherAcc, best_method: best?.method ?? null, best_retention: best?.retention ?? null, best_retention_std: best?.retention_std ?? null },
  });
  writeComparisonReport(join(BENCH_DIR, 'results', `${name}.html`), rows.map(({ per_seed: _p, ...r }) => r), curves, {
    title: `Data-free distillation on ${o.dataset}`,
    subtitle: `teacher ${o.teacher} → student ${o.student}, ${o.minutes} min per method, seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}`,
    xLabel: 'seconds',
    yLabel: 'student validation accuracy',
  });
  return file;
}

/**
 * The tgan loss terms, each removed in turn (weight 0), and the other choices of our tgan (affine
 * views, the class-conditional generator, the student's weight-selection init), on the same seed and budget.
 * The patch loss is off by default now (the README's measurements): `no-patch` equals `full` and
 * `with-patch` turns it on; both are kept so that the recorded ablation commands still run.
 */
export const ABLATIONS: Record<string, { hparams: Record<string, number | boolean>; studentInit?: StudentInit }> = {
  full: { hparams: {} },
  'no-adversarial': { hparams: { wAdv: 0 } },
  'no-attention': { hparams: { lambdaAttn: 0 } },
  'no-dafl-priors': { hparams: { wOh: 0, wIe: 0 } },
  'no-patch': { hparams: { lambdaPatch: 0 } },
  'with-patch': { hparams: { lambdaPatch: 1 } },
  'no-ce': { hparams: { lambdaCE: 0 } },
  'no-replay': { hparams: { studentSteps: 1 } },
  'no-affine-views': { hparams: { augScale: 0, augShift: 0, augRotate: 0 } },
  unconditional: { hparams: { conditional: false } },
  'random-init': { hparams: {}, studentInit: 'random' },
  // issue 15's diversity add-on: CMI's contrastive term in L_G at CMI's weight
  'with-contrastive': { hparams: { wCr: 0.8 } },
  // issue 15: the generator-only warm-up (generator alone for the first 100 iterations)
  'with-warmup': { hparams: { warmupSteps: 100 } },
  // issue 15: the label embedding started at std 1 instead of timm's 0.02 (tgan's --label-std), so
  // that the conditional generator follows its labels from the start
  'with-label-std-1': { hparams: { labelStd: 1 } },
};

export async function benchAblation(o: DistillBenchOptions & { variants: string[] }): Promise<string> {
  const name = o.name ?? `ablation-${o.dataset}${o.tiny ? '-tiny' : ''}`;
  const runsDir = benchRunsDir(name);
  const seeds = o.seeds ?? [o.seed];
  const rows: Record<string, unknown>[] = [];
  const curves: { name: string; points: [number, number][] }[] = [];
  const base = o.hparams?.tgan ?? {};
  const only = o.only ? parseOnly(o.only, o.seed) : null;
  // every variant checked before any run starts (a typo must not surface an hour in)
  for (const v of only ? [only.name] : o.variants) {
    if (!ABLATIONS[v]) throw new Error(`unknown ablation '${v}'; available: ${Object.keys(ABLATIONS).join(', ')}`);
  }
  const runVariant = (variant: string, seed: number): ReturnType<typeof runOne> => {
    const v = ABLATIONS[variant]!;
    return runOne(o, 'tgan', runLabel(o, variant, seed), { ...base, ...v.hparams }, runsDir, v.studentInit ?? 'auto', seed);
  };
  if (only) return runVariant(only.name, only.seed).result.method;
  const labels = o.variants.flatMap((v) => seeds.map((s) => runLabel(o, v, s)));
  const fillers = (o.jobs ?? 1) > 1 ? await runInParallel(labels, o.jobs!, process.argv.slice(1), { filler: true }) : 0;
  for (const variant of o.variants) {
    const runs = seeds.map((seed) => ({ seed, ...runVariant(variant, seed) }));
    // one seed: the row as before; several: the distill table's means, stds and per-seed figures
    const { method: _m, teacher: _t, student: _s, data_free: _d, ...stats } = seedRow('tgan', runs);
    rows.push({ variant, ...stats });
    for (const r of runs) curves.push({ name: seeds.length > 1 ? `${variant} (seed ${r.seed})` : variant, points: r.curve });
  }
  const file = report({ name, config: { dataset: o.dataset, teacher: o.teacher, student: o.student, minutes_per_variant: o.minutes, batch: o.batch, seed: o.seed, seeds, base_hparams: base, ablations: ABLATIONS, ...(o.studentEma ? { student_ema: o.studentEma } : {}), ...runThreads(o), filler_runs: fillers }, results: rows });
  writeComparisonReport(join(BENCH_DIR, 'results', `${name}.html`), rows, curves, { title: `tgan ablation on ${o.dataset}`, xLabel: 'seconds', yLabel: 'student validation accuracy' });
  return file;
}

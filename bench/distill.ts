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
import { BENCH_DIR, canonical, report, runInParallel } from './common.js';

export interface DistillBenchOptions {
  dataset: string;
  teacher: string;
  student: string;
  methods: string[];
  minutes: number;
  batch: number;
  seed: number;
  tiny?: boolean;
  /** Per-method hyper-parameter overrides (e.g. the tuned values), recorded in the result file. */
  hparams?: Record<string, Record<string, number | boolean>>;
  /**
   * Runs at once, each a child process with 1 thread (two 1-thread runs on 2 cores do about the work
   * of one 2-thread run each, so a table takes half the wall time). Default 1: in this process.
   */
  jobs?: number;
  /** Child mode: run this one method (or ablation variant) into its run folder, write no table. */
  only?: string;
}

export function loopConfig(o: Pick<DistillBenchOptions, 'tiny' | 'minutes' | 'batch' | 'seed'>): LoopConfig {
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
): { result: DistillResult; curve: [number, number][] } {
  const out = join(runsDir, label);
  const done = finishedRun(out, { teacher: o.teacher, student: o.student, method, hparams, loop: loopConfig(o), studentInit });
  if (done) {
    process.stderr.write(`\n== ${label}: reusing the finished run in ${out} (same configuration): test ${(100 * done.test_acc).toFixed(2)}%\n`);
    return { result: done, curve: curve(out) };
  }
  process.stderr.write(`\n== ${label}: ${method} ${JSON.stringify(hparams)} student-init ${studentInit} (${o.tiny ? 'tiny' : `${o.minutes} min`})\n`);
  const result = runDistillation({ teacher: o.teacher, student: o.student, method, hparams, loop: loopConfig(o), studentInit }, out, {
    onEval: (row) => process.stderr.write(`  it ${row.iteration} ${row.seconds.toFixed(0)} s: val ${(100 * (row.val_acc ?? 0)).toFixed(2)}%\n`),
  })!; // a single process: always rank 0's result
  process.stderr.write(`  test ${(100 * result.test_acc).toFixed(2)}% retention ${(100 * result.retention).toFixed(2)}% (${result.iterations} it)\n`);
  return { result, curve: curve(out) };
}

export async function benchDistill(o: DistillBenchOptions): Promise<string> {
  const name = `distill-${o.dataset}${o.tiny ? '-tiny' : ''}`;
  const runsDir = join(BENCH_DIR, 'runs', name);
  if (o.only) return runOne(o, o.only, o.only, o.hparams?.[o.only] ?? {}, runsDir).result.method;
  if ((o.jobs ?? 1) > 1) await runInParallel(o.methods, o.jobs!, process.argv.slice(1));
  const rows: Record<string, unknown>[] = [];
  const curves: { name: string; points: [number, number][] }[] = [];
  let teacherAcc = 0;
  for (const method of o.methods) {
    const { result, curve: c } = runOne(o, method, method, o.hparams?.[method] ?? {}, runsDir);
    teacherAcc = result.teacher_test_acc;
    rows.push({
      method, teacher: o.teacher, student: o.student, data_free: result.data_free, test_acc: result.test_acc, retention: result.retention,
      seconds: result.seconds, iterations: result.iterations, iterations_per_second: result.iterations_per_second,
    });
    curves.push({ name: method, points: c });
  }
  const dataFree = rows.filter((r) => r.data_free && r.method !== 'noise');
  const best = dataFree.reduce<Record<string, unknown> | null>((a, r) => (a === null || (r.retention as number) > (a.retention as number) ? r : a), null);
  const file = report({
    name,
    config: { dataset: o.dataset, teacher: o.teacher, student: o.student, minutes_per_method: o.minutes, batch: o.batch, seed: o.seed, hparams: o.hparams ?? {} },
    results: rows,
    summary: { teacher_acc: teacherAcc, best_method: best?.method ?? null, best_retention: best?.retention ?? null },
  });
  writeComparisonReport(join(BENCH_DIR, 'results', `${name}.html`), rows, curves, {
    title: `Data-free distillation on ${o.dataset}`,
    subtitle: `teacher ${o.teacher} → student ${o.student}, ${o.minutes} min per method, seed ${o.seed}`,
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
};

export async function benchAblation(o: DistillBenchOptions & { variants: string[] }): Promise<string> {
  const name = `ablation-${o.dataset}${o.tiny ? '-tiny' : ''}`;
  const runsDir = join(BENCH_DIR, 'runs', name);
  const rows: Record<string, unknown>[] = [];
  const curves: { name: string; points: [number, number][] }[] = [];
  const base = o.hparams?.tgan ?? {};
  const runVariant = (variant: string): ReturnType<typeof runOne> => {
    const v = ABLATIONS[variant];
    if (!v) throw new Error(`unknown ablation '${variant}'; available: ${Object.keys(ABLATIONS).join(', ')}`);
    return runOne(o, 'tgan', variant, { ...base, ...v.hparams }, runsDir, v.studentInit ?? 'auto');
  };
  if (o.only) return runVariant(o.only).result.method;
  if ((o.jobs ?? 1) > 1) await runInParallel(o.variants, o.jobs!, process.argv.slice(1));
  for (const variant of o.variants) {
    const { result, curve: c } = runVariant(variant);
    rows.push({ variant, test_acc: result.test_acc, retention: result.retention, iterations: result.iterations, seconds: result.seconds });
    curves.push({ name: variant, points: c });
  }
  const file = report({ name, config: { dataset: o.dataset, teacher: o.teacher, student: o.student, minutes_per_variant: o.minutes, batch: o.batch, seed: o.seed, base_hparams: base, ablations: ABLATIONS }, results: rows });
  writeComparisonReport(join(BENCH_DIR, 'results', `${name}.html`), rows, curves, { title: `tgan ablation on ${o.dataset}`, xLabel: 'seconds', yLabel: 'student validation accuracy' });
  return file;
}

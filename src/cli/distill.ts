// dfkd distill: run a data-free method (or a reference) with progress, sample grids and a report.
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { checkRunInputs, runDistillation, type DistillResult, type DistillRunConfig } from '../distill/run.js';
import { METHODS } from '../distill/methods/index.js';
import type { LoopConfig } from '../distill/loop.js';
import { classGrid, saveGridLayout, savePng } from '../report/png.js';
import { writeRunReport } from '../report/html.js';
import { progressBar } from './progress.js';

const say = (s: string): void => void process.stdout.write(`${s}\n`);
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

export const kebab = (s: string): string => s.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

/** Every hyper-parameter name of every method, with the methods that have it and their defaults. */
export function hparamFlags(): Map<string, { methods: string[]; defaults: Record<string, number | boolean> }> {
  const flags = new Map<string, { methods: string[]; defaults: Record<string, number | boolean> }>();
  for (const [name, m] of Object.entries(METHODS)) {
    for (const [k, v] of Object.entries(m.defaults)) {
      const f = flags.get(k) ?? { methods: [], defaults: {} };
      f.methods.push(name);
      f.defaults[name] = v;
      flags.set(k, f);
    }
  }
  return flags;
}

export interface DistillCliOptions {
  teacher: string;
  student: string;
  method: string;
  iterations?: number;
  minutes?: number;
  batch: number;
  seed: number;
  evalEvery: number;
  sampleEvery: number;
  checkpointEvery: number;
  studentLr?: number;
  studentInit?: 'random' | 'select' | 'auto';
  cosine: boolean;
  clipNorm: number;
  out?: string;
  resume: boolean;
  report: boolean;
  /** Detection: the synthesis in a second process (detect/distill/feed.ts). */
  generatorProcess?: boolean;
  [hparam: string]: unknown;
}

/** The loop budget and cadence from the flags (shared by classification and detection): 10 minutes unless --iterations or --minutes. */
export function loopConfigOf(o: Pick<DistillCliOptions, 'iterations' | 'minutes' | 'batch' | 'seed' | 'evalEvery' | 'sampleEvery' | 'checkpointEvery' | 'studentLr' | 'cosine' | 'clipNorm'>): LoopConfig {
  return {
    iterations: o.iterations ?? Number.MAX_SAFE_INTEGER,
    minutes: o.minutes ?? (o.iterations === undefined ? 10 : Number.POSITIVE_INFINITY),
    batchSize: o.batch,
    seed: o.seed,
    evalEvery: o.evalEvery,
    sampleEvery: o.sampleEvery,
    checkpointEvery: o.checkpointEvery,
    studentLr: o.studentLr,
    cosine: o.cosine,
    clipNorm: o.clipNorm,
  };
}

/** The run folder when --out is not given: runs/distill-<method>-<time>. */
export function defaultDistillOut(method: string): string {
  return join('runs', `distill-${method}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
}

export function runDistillCommand(o: DistillCliOptions): DistillResult {
  const spec = METHODS[o.method];
  if (!spec) throw new Error(`unknown method '${o.method}'; available: ${Object.keys(METHODS).join(', ')}`);
  const hparams: Record<string, number | boolean> = {};
  for (const [k, f] of hparamFlags()) {
    const v = o[k];
    if (v === undefined) continue;
    if (!f.methods.includes(o.method)) throw new Error(`--${kebab(k)} does not apply to ${o.method} (it is a hyper-parameter of ${f.methods.join(', ')})`);
    hparams[k] = typeof spec.defaults[k] === 'boolean' ? v === true || v === 'true' : Number(v);
  }
  checkRunInputs(o);
  const out = o.out ?? defaultDistillOut(o.method);
  mkdirSync(out, { recursive: true });
  const loop = loopConfigOf(o);
  const cfg: DistillRunConfig = { teacher: o.teacher, student: o.student, method: o.method, hparams, loop, studentInit: o.studentInit };
  const budget = o.iterations !== undefined ? `${o.iterations} iterations` : `${loop.minutes} min`;
  say(`dfkd distill: ${o.method} (${spec.description}), teacher ${o.teacher} → student ${o.student}, ${budget}, batch ${o.batch}, seed ${o.seed} → ${out}`);
  const bar = progressBar('distill', '{logs} | val {val} | {ips} it/s');
  let lastVal = 'n/a';
  const result = runDistillation(cfg, out, {
    resume: o.resume,
    log: say,
    onIteration: (it, total, logs, seconds) => {
      const shown = Object.entries(logs)
        .filter(([k]) => k.startsWith('S/') || k === 'G/total' || k === 'G/discrepancy' || k === 'G/kl' || k === 'G/ce')
        .slice(0, 3)
        .map(([k, v]) => `${k} ${v.toFixed(3)}`)
        .join(' ');
      bar.update(it, total === Number.MAX_SAFE_INTEGER ? it : total, { logs: shown, val: lastVal, ips: (it / Math.max(1e-9, seconds)).toFixed(2) });
    },
    onEval: (row) => {
      lastVal = pct(row.val_acc ?? Number.NaN);
    },
    onSamples: (iteration, pixels, predicted, numClasses) => {
      const { png, layout } = classGrid(pixels, predicted, numClasses, 8);
      const file = join(out, 'samples', `iter-${String(iteration).padStart(6, '0')}.png`);
      savePng(file, png);
      saveGridLayout(file, layout);
    },
  });
  bar.stop();
  if (o.report) writeRunReport(out);
  say(`student test accuracy ${pct(result.test_acc)} | teacher ${pct(result.teacher_test_acc)} | retention ${pct(result.retention)}`);
  say(`student ${result.student_params.toLocaleString()} params, ${(result.student_flops / 1e6).toFixed(2)} MFLOPs | teacher ${result.teacher_params.toLocaleString()} params, ${(result.teacher_flops / 1e6).toFixed(2)} MFLOPs`);
  say(`${result.iterations} iterations in ${result.seconds.toFixed(0)} s (${result.iterations_per_second.toFixed(2)} it/s); report: ${join(out, 'report.html')}`);
  return result;
}

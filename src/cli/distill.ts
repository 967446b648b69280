// dfkd distill: run a data-free method (or a reference) with progress, sample grids and a report.
import { join, resolve } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { writeJsonAtomic } from '../util/fs.js';
import { readCheckpointConfig } from '../export/checkpoint.js';
import { prepareRunFolder } from './run-folder.js';
import { COLLAPSE_MAX_CLASSES } from '../distill/collapse.js';
import { checkRunInputs, runDistillation, type DistillResult, type DistillRunConfig } from '../distill/run.js';
import { METHODS } from '../distill/methods/index.js';
import type { LoopConfig } from '../distill/loop.js';
import { classGrid, saveGridLayout, savePng } from '../report/png.js';
import { writeRunReport } from '../report/html.js';
import { progressBar, say } from './progress.js';

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
  /** Report an exponential moving average of the student's weights with this decay (0 / absent: off). */
  studentEma?: number;
  out?: string;
  resume: boolean;
  /** Move an existing run in --out aside (renamed) and start a new one there. */
  force?: boolean;
  /** The caller already ran prepareRunFolder on --out (the CLI does, before importing a foreign teacher into it). */
  folderReady?: boolean;
  /** With --resume: extend a minutes budget by this many minutes / an iterations budget by this many iterations. */
  extendMinutes?: number;
  extendIterations?: number;
  report: boolean;
  /** Detection: the synthesis in a second process (detect/distill/feed.ts). */
  generatorProcess?: boolean;
  [hparam: string]: unknown;
}

/** The loop budget and cadence from the flags (shared by classification and detection): 10 minutes unless --iterations or --minutes. */
export function loopConfigOf(o: Pick<DistillCliOptions, 'iterations' | 'minutes' | 'batch' | 'seed' | 'evalEvery' | 'sampleEvery' | 'checkpointEvery' | 'studentLr' | 'cosine' | 'clipNorm' | 'studentEma'>): LoopConfig {
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
    // absent when off, so the loop records of runs made before the flag still compare equal
    ...(o.studentEma ? { studentEma: o.studentEma } : {}),
  };
}

/** What a run folder's config.json holds of the settings (classification and detection alike). */
interface SavedRunConfig {
  task?: string;
  teacher: string;
  student: string;
  method: string;
  studentInit?: string;
  hparams: Record<string, number | boolean>;
  method_hparams?: Record<string, number | string | boolean>;
  loop: Omit<LoopConfig, 'minutes'> & { minutes: number | null };
  generatorProcess?: boolean;
  /** The --extend-* given on resumes, in order (each from the checkpoint at `at_iteration`). */
  extensions?: BudgetExtension[];
}

interface BudgetExtension {
  at_iteration: number;
  minutes?: number;
  iterations?: number;
}

/** The iteration of a run folder's last checkpoint (0 without one). */
function checkpointIteration(out: string): number {
  try {
    return readCheckpointConfig<{ state?: { iteration?: number } }>(join(out, 'checkpoints', 'last')).state?.iteration ?? 0;
  } catch {
    return 0;
  }
}

/**
 * --resume: the run's own settings (config.json) for every flag the user did not give, and a refusal
 * listing every given flag that would change the result (teacher, student, method, batch, seed,
 * learning rate, schedule, clipping, initial weights, budget, hyper-parameters) and differs from the
 * run's. The budget grows only on purpose: --extend-minutes / --extend-iterations, recorded in
 * config.json. `explicit`: the option names given on the command line (all of o's when absent).
 */
export function resumeOptions(o: DistillCliOptions, explicit?: Set<string>): DistillCliOptions & { task?: string } {
  if (!o.out) throw new Error('--resume needs --out <dir>: the run folder to continue');
  prepareRunFolder(o.out, { resume: true, force: o.force });
  const file = join(o.out, 'config.json');
  if (!existsSync(file)) throw new Error(`--resume: ${file} not found (is ${o.out} a run folder made by dfkd distill?)`);
  let saved: SavedRunConfig;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as SavedRunConfig;
  } catch (e) {
    throw new Error(`--resume: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const given = (k: string): boolean => (explicit ? explicit.has(k) : o[k] !== undefined);
  const savedMinutes = saved.loop.minutes ?? Number.POSITIVE_INFINITY;
  const savedIterations = saved.loop.iterations;
  const settings: [flag: string, key: string, savedValue: unknown, same?: (a: unknown, b: unknown) => boolean][] = [
    ['teacher', 'teacher', saved.teacher, (a, b) => resolve(String(a)) === resolve(String(b))],
    ['student', 'student', saved.student],
    ['method', 'method', saved.method],
    ['student-init', 'studentInit', saved.studentInit ?? 'auto'],
    ['batch', 'batch', saved.loop.batchSize],
    ['seed', 'seed', saved.loop.seed],
    ['student-lr', 'studentLr', saved.loop.studentLr],
    ['cosine', 'cosine', saved.loop.cosine],
    ['clip-norm', 'clipNorm', saved.loop.clipNorm],
    ['student-ema', 'studentEma', saved.loop.studentEma, (a, b) => Number(a ?? 0) === Number(b ?? 0)],
    ['iterations', 'iterations', savedIterations === Number.MAX_SAFE_INTEGER ? undefined : savedIterations],
    ['minutes', 'minutes', Number.isFinite(savedMinutes) ? savedMinutes : undefined],
  ];
  const r: DistillCliOptions & { task?: string } = { ...o, task: saved.task };
  const mismatches: string[] = [];
  for (const [flag, key, value, same] of settings) {
    if (given(key) && o[key] !== undefined) {
      if (!(same ? same(o[key], value) : JSON.stringify(o[key]) === JSON.stringify(value))) {
        mismatches.push(`--${flag}: the run has ${value === undefined ? '(not set)' : JSON.stringify(value)}, given ${JSON.stringify(o[key])}`);
      }
    } else {
      r[key] = value;
    }
  }
  // Cadence flags change no weights: given ones apply, the others are the run's.
  for (const [key, value] of [['evalEvery', saved.loop.evalEvery], ['sampleEvery', saved.loop.sampleEvery], ['checkpointEvery', saved.loop.checkpointEvery]] as const) {
    if (!given(key)) r[key] = value;
  }
  if (saved.generatorProcess && !given('generatorProcess')) r.generatorProcess = true;
  // Hyper-parameters: a given one must equal the value the run used; the others are the run's overrides.
  const settingKeys = new Set(settings.map(([, key]) => key));
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || settingKeys.has(k) || !Object.prototype.hasOwnProperty.call(saved.method_hparams ?? {}, k) || !given(k)) continue;
    const want = saved.method_hparams![k];
    const have = typeof want === 'boolean' ? v === true || v === 'true' : Number(v);
    if (have !== want) mismatches.push(`--${kebab(k)}: the run has ${JSON.stringify(want)}, given ${JSON.stringify(v)}`);
  }
  for (const [k, v] of Object.entries(saved.hparams ?? {})) if (!given(k)) r[k] = v;
  if (mismatches.length > 0) {
    const budget = mismatches.some((m) => m.startsWith('--iterations') || m.startsWith('--minutes'))
      ? ' To give a run more budget on purpose, resume it with --extend-minutes M or --extend-iterations N.'
      : '';
    throw new Error(`--resume: ${o.out} was started with other settings, which would change the result:\n  ${mismatches.join('\n  ')}\nResume with the run's own settings (leave those flags out), or start a new run in another --out.${budget}`);
  }
  if (o.extendMinutes !== undefined || o.extendIterations !== undefined) {
    if (o.extendMinutes !== undefined && o.extendIterations !== undefined) throw new Error('give one of --extend-minutes and --extend-iterations');
    const byMinutes = o.extendMinutes !== undefined;
    if (byMinutes && !Number.isFinite(savedMinutes)) throw new Error(`--extend-minutes: ${o.out} has an iterations budget (${savedIterations}); use --extend-iterations`);
    if (!byMinutes && savedIterations === Number.MAX_SAFE_INTEGER) throw new Error(`--extend-iterations: ${o.out} has a time budget (${savedMinutes} min); use --extend-minutes`);
    // "From checkpoint X, N more": the same extension from the same checkpoint applies once, so a
    // resume that failed after recording it, or every rank of a data-parallel run, can give it again.
    const atIteration = checkpointIteration(o.out);
    const ext: BudgetExtension = byMinutes ? { at_iteration: atIteration, minutes: o.extendMinutes } : { at_iteration: atIteration, iterations: o.extendIterations };
    const prev = saved.extensions?.at(-1);
    if (prev && prev.at_iteration === ext.at_iteration && prev.minutes === ext.minutes && prev.iterations === ext.iterations) {
      r.minutes = savedMinutes;
      r.iterations = savedIterations;
    } else {
      if (byMinutes) r.minutes = savedMinutes + o.extendMinutes!;
      else r.iterations = savedIterations + o.extendIterations!;
      // Recorded, so a later --resume compares against the extended budget.
      writeJsonAtomic(file, { ...saved, loop: { ...saved.loop, ...(byMinutes ? { minutes: r.minutes } : { iterations: r.iterations }) }, extensions: [...(saved.extensions ?? []), ext] });
    }
  }
  return r;
}

/** One budget per run: --iterations or --minutes (the extension flags only with --resume). */
export function checkBudgetFlags(o: Pick<DistillCliOptions, 'iterations' | 'minutes' | 'resume' | 'extendMinutes' | 'extendIterations'>): void {
  if (o.iterations !== undefined && o.minutes !== undefined) throw new Error('give one budget: --iterations or --minutes, not both');
  if (!o.resume && (o.extendMinutes !== undefined || o.extendIterations !== undefined)) throw new Error('--extend-minutes / --extend-iterations extend a run being resumed: add --resume');
}

/** The run folder when --out is not given: runs/distill-<method>-<time>. */
export function defaultDistillOut(method: string): string {
  return join('runs', `distill-${method}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
}

export function runDistillCommand(o: DistillCliOptions): DistillResult | null {
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
  if (!o.folderReady) prepareRunFolder(out, o, say);
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
      const classes = logs['synth/classes'];
      const div = logs['synth/diversity'];
      // within-class diversity: mean pairwise cosine distance of the teacher's features (collapse.ts)
      const diversity = div !== undefined ? ` div ${div.toFixed(2)}` : '';
      const guard = logs['synth/collapsed'] ? ` | ⚠ collapse: the teacher sees ${classes} class${classes === 1 ? '' : 'es'}` : classes !== undefined ? ` | ${classes} cls${diversity}` : '';
      bar.update(it, total === Number.MAX_SAFE_INTEGER ? it : total, { logs: shown + guard, val: lastVal, ips: (it / Math.max(1e-9, seconds)).toFixed(2) });
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
  if (!result) return null; // a data-parallel rank other than 0: rank 0 reports
  if (o.report) writeRunReport(out);
  const c = result.collapse;
  if (c.collapsed_rows > 0) {
    say(`warning: the synthetic data collapsed: in ${c.collapsed_rows} of ${c.rows} metrics rows (from iteration ${c.first_collapsed_iteration}) the teacher read the batches as ≤ ${COLLAPSE_MAX_CLASSES} classes (fewest ${c.min_classes?.toFixed(1)}); the student learns little from such data — see metrics.jsonl synth/*`);
  }
  say(`student test accuracy ${pct(result.test_acc)} | teacher ${pct(result.teacher_test_acc)} | retention ${pct(result.retention)}`);
  say(`student ${result.student_params.toLocaleString()} params, ${(result.student_flops / 1e6).toFixed(2)} MFLOPs | teacher ${result.teacher_params.toLocaleString()} params, ${(result.teacher_flops / 1e6).toFixed(2)} MFLOPs`);
  say(`${result.iterations} iterations in ${result.seconds.toFixed(0)} s (${result.iterations_per_second.toFixed(2)} it/s)${o.report ? `; report: ${join(out, 'report.html')}` : ''}`);
  return result;
}

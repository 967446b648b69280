// npm run bench -- <name> [--tiny]: runs one benchmark, prints a table, writes bench/results/<name>.json.
import { benchStep } from './step.js';
import { benchMemory } from './memory.js';
import { benchDistill, benchAblation, ABLATIONS } from './distill.js';
import { benchInfer } from './infer.js';
import type { OrtOptimization } from '../src/export/ort.js';
import { setNumThreads } from '../src/tensor/tensor.js';
import { parseEmaDecay } from '../src/distill/ema.js';
import { benchTeacher } from './teacher.js';
import { benchDetect } from './detect.js';
import { benchFeed } from './feed.js';
import { benchFaults } from './faults.js';
import { benchDdp } from './ddp.js';
import { benchList } from './list.js';
import { benchReadme } from './readme.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const TEACHERS: Record<string, string> = { mnist: 'teachers/mnist-vit', 'fashion-mnist': 'teachers/fashion-vit' };
const ALL_METHODS = 'tgan,dafl,dfad,zskt,deepinv,cmi,fast,nayer,kd,noise,scratch';
/**
 * The teacher → student pairs of the distillation tables (issue 15): `--pair` picks one (the result
 * file is distill-<pair>, except the two ViT pairs, which keep their dataset names); the LeNet pairs
 * have no ViT-only methods (tgan) and deepinv without its ViT patch prior.
 */
const PAIRS: Record<string, { dataset: string; teacher: string; student: string; name?: string; methods: string; hparams?: Record<string, Record<string, number | boolean>> }> = {
  'mnist-vit': { dataset: 'mnist', teacher: 'teachers/mnist-vit', student: 'vit-student-28', methods: ALL_METHODS },
  'fashion-vit': { dataset: 'fashion-mnist', teacher: 'teachers/fashion-vit', student: 'vit-student-28', methods: ALL_METHODS },
  'fashion-lenet': {
    dataset: 'fashion-mnist', teacher: 'teachers/fashion-lenet5', student: 'lenet5-half-28', name: 'distill-fashion-lenet',
    methods: 'dafl,dfad,zskt,deepinv,cmi,fast,nayer,kd,noise,scratch', hparams: { deepinv: { alphaPs: 0 } },
  },
  'mnist-lenet': {
    dataset: 'mnist', teacher: 'teachers/mnist-lenet5', student: 'lenet5-half-28', name: 'distill-mnist-lenet',
    methods: 'dafl,dfad,zskt,deepinv,cmi,fast,nayer,kd,noise,scratch', hparams: { deepinv: { alphaPs: 0 } },
  },
};
/**
 * Intra-op threads for the runs a distill / ablation bench makes in its own process (--threads,
 * default 1: two 1-thread runs side by side are the measured setting here, and libtorch's default —
 * every core — oversubscribes the machine when another bench runs beside it). Set before any run.
 */
const benchThreads = (): number => {
  const n = Number(flag('threads', '1'));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--threads: expected a positive integer, got '${flag('threads', '1')}'`);
  setNumThreads(n);
  return n;
};

const seedsFlag = (): number[] | undefined => {
  const s = flag('seeds', '');
  if (!s) return undefined;
  const seeds = s.split(',').map(Number);
  if (seeds.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`--seeds: expected comma-separated non-negative integers, got '${s}'`);
  return seeds;
};
/** --student-ema <decay>: 0 (off, the default) or in (0, 1). */
const studentEmaFlag = (): number | undefined => {
  let v: number;
  try {
    v = parseEmaDecay(flag('student-ema', '0'));
  } catch (e) {
    throw new Error(`--student-ema: ${(e as Error).message}`);
  }
  return v > 0 ? v : undefined;
};
const studentInitFlag = (): 'auto' | 'random' | 'select' => {
  const v = flag('student-init', 'auto');
  if (v !== 'auto' && v !== 'random' && v !== 'select') throw new Error(`--student-init: auto, random or select, got '${v}'`);
  return v;
};
/** Tuned on the validation split (see the README); recorded in each result file. */
const TUNED: Record<string, Record<string, number | boolean>> = {};
/** Per-method hyper-parameters, later sources over earlier ones, method by method. */
function mergeHparams(...sources: Record<string, Record<string, number | boolean>>[]): Record<string, Record<string, number | boolean>> {
  const out: Record<string, Record<string, number | boolean>> = {};
  for (const s of sources) for (const [m, h] of Object.entries(s)) out[m] = { ...out[m], ...h };
  return out;
}

/** The flags each bench reads (anything else is refused, so a typo cannot start a long run with defaults). */
const BENCH_FLAGS: Record<string, string[]> = {
  list: [],
  readme: ['check'],
  detect: ['teacher', 'student', 'methods', 'minutes', 'scratch-epochs', 'batch', 'seed', 'jobs', 'only', 'tiny'],
  feed: ['teacher', 'student', 'iterations', 'rounds', 'batch', 'tiny'],
  ddp: ['teacher', 'student', 'method', 'seed', 'batch', 'iterations', 'rounds', 'minutes', 'tiny'],
  faults: ['random-trials', 'tiny'],
  infer: ['teacher-vit', 'student-vit', 'student-vit-fast', 'student-vit-lite', 'teacher-lenet5', 'student-lenet5', 'threads', 'ort-optimization', 'rounds', 'tiny'],
  teacher: ['teachers', 'retrain', 'tiny'],
  step: ['tiny'],
  memory: ['tiny'],
  distill: ['pair', 'dataset', 'teacher', 'student', 'methods', 'minutes', 'batch', 'seed', 'seeds', 'student-init', 'student-ema', 'name', 'hparams', 'jobs', 'only', 'threads', 'tiny'],
  ablation: ['dataset', 'teacher', 'student', 'variants', 'minutes', 'batch', 'seed', 'seeds', 'student-ema', 'name', 'hparams', 'jobs', 'only', 'threads', 'tiny'],
};
/** Flags without a value. */
const SWITCHES = new Set(['tiny', 'retrain', 'check']);

/** The first flag `bench` does not read, or one missing its value, as a message; null when all are fine. */
function unknownFlags(bench: string, args: string[]): string | null {
  const known = new Set(BENCH_FLAGS[bench] ?? []);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) return `bench ${bench}: unexpected argument '${a}'`;
    const f = a.slice(2);
    if (!known.has(f)) return `bench ${bench}: unknown flag --${f}${known.size ? ` (it reads ${[...known].map((x) => `--${x}`).join(', ')})` : ' (it takes no flags)'}`;
    if (SWITCHES.has(f)) continue;
    const v = args[i + 1];
    if (v === undefined || (v.startsWith('--') && Number.isNaN(Number(v)))) return `bench ${bench}: --${f} needs a value`;
    i++;
  }
  return null;
}

/** --hparams '{"tgan": {"warmupSteps": 100}}': per-method overrides of the methods' defaults. */
const hparamsFlag = (): Record<string, Record<string, number | boolean>> => {
  const raw = flag('hparams', '');
  if (!raw) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new Error(`--hparams: not JSON (${(e as Error).message}); expected e.g. '{"tgan":{"warmupSteps":100}}'`);
  }
  const ok = (o: unknown): o is Record<string, unknown> => typeof o === 'object' && o !== null && !Array.isArray(o);
  if (!ok(v) || !Object.values(v).every((m) => ok(m) && Object.values(m).every((x) => typeof x === 'number' || typeof x === 'boolean'))) {
    throw new Error(`--hparams: expected {"<method>": {"<name>": number | boolean, …}, …}, got ${raw}`);
  }
  return v as Record<string, Record<string, number | boolean>>;
};

const BENCHES: Record<string, (tiny: boolean) => Promise<string>> = {
  list: () => benchList(),
  // README.md's result tables from bench/results/*.json; --check: exit 1 listing those that differ
  readme: () => benchReadme(process.argv.includes('--check')),
  detect: (tiny) =>
    benchDetect({
      teacher: flag('teacher', 'teachers/detr-canvas-mnist'), student: flag('student', 'detr-student-64'),
      methods: flag('methods', 'tgan,dfad,deepinv,kd').split(','), minutes: Number(flag('minutes', '60')),
      scratchEpochs: Number(flag('scratch-epochs', '10')), batch: Number(flag('batch', '32')), seed: Number(flag('seed', '0')), tiny,
      jobs: Number(flag('jobs', '1')), only: flag('only', '') || undefined,
    }),
  feed: (tiny) =>
    benchFeed({
      teacher: flag('teacher', 'teachers/detr-canvas-mnist'), student: flag('student', 'detr-student-64'),
      ...(tiny ? { iterations: 3, rounds: 1, batch: 4, tiny } : { iterations: Number(flag('iterations', '40')), rounds: Number(flag('rounds', '2')), batch: Number(flag('batch', '32')) }),
    }),
  ddp: (tiny) =>
    benchDdp({
      teacher: flag('teacher', 'teachers/mnist-vit'), student: flag('student', 'vit-student-28'), method: flag('method', 'tgan'),
      seed: Number(flag('seed', '0')),
      ...(tiny ? { batch: 8, iterations: 2, rounds: 1, minutes: 0, tiny } : { batch: Number(flag('batch', '64')), iterations: Number(flag('iterations', '40')), rounds: Number(flag('rounds', '2')), minutes: Number(flag('minutes', '5')) }),
    }),
  faults: (tiny) => benchFaults({ randomTrials: Number(flag('random-trials', '4')), tiny }),
  // Students default to randomly initialised presets (latency, size); give trained ones for accuracy.
  infer: (tiny) =>
    benchInfer({
      pairs: [
        { name: 'vit', teacher: flag('teacher-vit', 'teachers/mnist-vit'), student: flag('student-vit', 'vit-student-28') },
        // the latency preset (issue 18), against the same teacher row
        { name: 'vit-fast', teacher: flag('teacher-vit', 'teachers/mnist-vit'), student: flag('student-vit-fast', 'vit-student-28-fast') },
        // between the two: 2 blocks, 3 heads, MLP ratio 2
        { name: 'vit-lite', teacher: flag('teacher-vit', 'teachers/mnist-vit'), student: flag('student-vit-lite', 'vit-student-28-lite') },
        { name: 'lenet5', teacher: flag('teacher-lenet5', 'teachers/mnist-lenet5'), student: flag('student-lenet5', 'lenet5-half-28') },
      ],
      batches: [1, 32], threads: Number(flag('threads', '1')), optimization: (flag('ort-optimization', '') || undefined) as OrtOptimization | undefined,
      ...(tiny ? { rounds: 1, callsBatch1: 3, callsLarge: 2, warmup: 1, tiny } : { rounds: Number(flag('rounds', '6')), callsBatch1: 100, callsLarge: 20, warmup: 10 }),
    }),
  teacher: (tiny) => {
    const only = flag('teachers', '');
    return benchTeacher({ retrain: process.argv.includes('--retrain'), only: only ? only.split(',') : undefined, tiny });
  },
  step: (tiny) => benchStep(tiny ? { rounds: 1, stepsPerRound: 1, batch: 4, tiny } : { rounds: 8, stepsPerRound: 3, batch: 64 }),
  memory: (tiny) =>
    benchMemory(tiny ? { steps: 30, batch: 4, checkpoints: [10, 30], tiny } : { steps: 10000, batch: 16, checkpoints: [100, 1000, 2500, 5000, 7500, 10000] }),
  distill: (tiny) => {
    const pairName = flag('pair', '');
    const pair = pairName ? PAIRS[pairName] : undefined;
    if (pairName && !pair) throw new Error(`unknown --pair '${pairName}'; available: ${Object.keys(PAIRS).join(', ')}`);
    const dataset = pair?.dataset ?? flag('dataset', 'mnist');
    const init = studentInitFlag();
    const baseName = pair?.name ?? `distill-${dataset}`;
    return benchDistill({
      dataset, teacher: flag('teacher', pair?.teacher ?? TEACHERS[dataset] ?? ''), student: flag('student', pair?.student ?? 'vit-student-28'),
      methods: flag('methods', pair?.methods ?? ALL_METHODS).split(','), minutes: Number(flag('minutes', '5')), batch: Number(flag('batch', '64')),
      seed: Number(flag('seed', '0')), seeds: seedsFlag(), studentInit: init, studentEma: studentEmaFlag(),
      // a table of its own per budget and init, so that one never overwrites another
      name: flag('name', '') || `${baseName}${tiny ? '-tiny' : ''}${flag('minutes', '') ? `-${flag('minutes', '')}min` : ''}${init === 'random' ? '-random-init' : ''}`,
      tiny, hparams: mergeHparams(TUNED, pair?.hparams ?? {}, hparamsFlag()), jobs: Number(flag('jobs', '1')), only: flag('only', '') || undefined, threads: benchThreads(),
    });
  },
  ablation: (tiny) => {
    const dataset = flag('dataset', 'mnist');
    return benchAblation({
      dataset, teacher: flag('teacher', TEACHERS[dataset] ?? ''), student: flag('student', 'vit-student-28'), methods: ['tgan'],
      variants: flag('variants', Object.keys(ABLATIONS).join(',')).split(','), minutes: Number(flag('minutes', '5')),
      batch: Number(flag('batch', '64')), seed: Number(flag('seed', '0')), seeds: seedsFlag(), studentEma: studentEmaFlag(), name: flag('name', '') || undefined, tiny, hparams: mergeHparams(TUNED, hparamsFlag()), jobs: Number(flag('jobs', '1')),
      only: flag('only', '') || undefined, threads: benchThreads(),
    });
  },
};

const USAGE = `usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [flags]\n${Object.entries(BENCH_FLAGS).map(([b, f]) => `  ${b.padEnd(9)}${(f.length ? f.map((x) => (SWITCHES.has(x) ? `[--${x}]` : `[--${x} v]`)).join(' ') : '(no flags)')}`).join('\n')}\n  readme --check writes nothing and exits 1 if the README's tables and bench/results differ; distill/ablation --hparams '{"tgan":{"warmupSteps":100}}' overrides method hyper-parameters (recorded in the result file)\n`;
const [name, ...flags] = process.argv.slice(2);
if (name === '--help' || name === '-h' || flags.includes('--help') || flags.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const run = name ? BENCHES[name] : undefined;
if (!run) {
  process.stderr.write(name ? `unknown bench '${name}'\n${USAGE}` : USAGE);
  process.exit(2);
}
// A mistyped flag would otherwise be ignored and an hours-long bench run with the wrong settings.
const unknown = unknownFlags(name!, flags);
if (unknown) {
  process.stderr.write(`${unknown}\n${USAGE}`);
  process.exit(2);
}
try {
  await run(flags.includes('--tiny'));
} catch (e) {
  // a bad flag value or a failed run: its message, not a stack trace (DFKD_DEBUG=1 for the stack)
  process.stderr.write(`bench ${name}: ${process.env.DFKD_DEBUG ? (e as Error).stack : (e as Error).message}\n`);
  process.exit(1);
}

// npm run bench -- readme [--check]: the README's result tables, rendered from bench/results/*.json
// (issue 17: a figure in the README is the figure in the file, with the file, commit, date and
// command under it). Each table sits between `<!-- bench:<file> -->` and `<!-- /bench:<file> -->`;
// `readme` rewrites those blocks in place (atomically), `--check` writes nothing and exits 1 naming
// every block that differs from its file. Prose outside the markers is never touched.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/util/fs.js';
import { BENCH_DIR } from './common.js';

export const README_PATH = join(BENCH_DIR, '..', 'README.md');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const FIX_COMMAND = 'npm run bench -- readme';

/** A result file as bench/common.ts's report() writes it (older files lack some fields). */
export interface ResultFile {
  name?: string;
  commit?: string;
  date?: string;
  command?: string;
  config?: Record<string, unknown>;
  results: Row[];
  summary?: Record<string, unknown>;
}
type Row = Record<string, unknown>;

// ---- number formats: the README's own (percentages of accuracy to 2 decimals, of retention to 1) ----

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN);
/** 0.9194 → "91.94%"; missing → "—". */
export function pct(v: unknown, digits: number): string {
  const x = num(v);
  return Number.isNaN(x) ? '—' : `${(100 * x).toFixed(digits)}%`;
}
/** 5147.8 → "5,148". */
export function count(v: unknown): string {
  const x = num(v);
  return Number.isNaN(x) ? '—' : Math.round(x).toLocaleString('en-US');
}
export function fixed(v: unknown, digits: number): string {
  const x = num(v);
  return Number.isNaN(x) ? '—' : x.toFixed(digits);
}
/** An mAP to 4 decimals, except a positive one that would read 0.0000: one significant figure (0.00004). */
function mapFigure(v: unknown): string {
  const x = num(v);
  if (Number.isNaN(x)) return '—';
  const s = x.toFixed(4);
  return x > 0 && Number(s) === 0 ? x.toPrecision(1) : s;
}
const bold = (s: string, on: boolean): string => (on && s !== '—' ? `**${s}**` : s);
/** Inline code for a table cell: a `|` would end the cell, so it is escaped (GFM reads `\|` inside code too). */
const code = (s: unknown): string => `\`${String(s).replace(/\|/g, '\\|')}\``;

/** A multi-seed row (bench/distill.ts --seeds) shows "mean ± std"; a one-seed row the plain figure. */
function seedCount(r: Row): number {
  return Array.isArray(r.seeds) ? r.seeds.length : 1;
}
function seedFigure(r: Row, key: 'test_acc' | 'retention', digits: number, withCount: boolean): string {
  const n = seedCount(r);
  if (n <= 1 || typeof r[`${key}_mean`] !== 'number') return pct(r[key], digits);
  const mean = num(r[`${key}_mean`]);
  const std = num(r[`${key}_std`]);
  return `${(100 * mean).toFixed(digits)} ± ${(100 * std).toFixed(digits)}%${withCount ? ` (${n} seeds)` : ''}`;
}

function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

// ---- one renderer per kind of result file ----

/** How the distillation tables name the references beside the data-free methods. */
const METHOD_LABELS: Record<string, string> = {
  tgan: '`tgan` (seed method)',
  kd: '`kd` on real images (upper reference)',
  noise: '`noise` (lower reference)',
  scratch: '`scratch` on real labels (random init)',
};

/** distill-*.json (every dataset, pair, budget and init): one row per method, in the file's order. */
export function distillTable(r: ResultFile): string {
  const best = r.summary?.best_method;
  const rows = r.results.map((row) => {
    const isBest = row.method === best;
    return [
      METHOD_LABELS[String(row.method)] ?? code(row.method),
      row.data_free ? 'yes' : 'no',
      bold(seedFigure(row, 'test_acc', 2, true), isBest),
      bold(seedFigure(row, 'retention', 1, false), isBest),
      count(row.iterations),
      fixed(row.iterations_per_second, 2),
    ];
  });
  return markdownTable(['method', 'data-free', 'test accuracy', 'retention', 'iterations', 'it/s'], rows);
}

/** What each ablation variant changes (bench/distill.ts ABLATIONS), in the README's words. */
export const ABLATION_LABELS: Record<string, string> = {
  full: 'the defaults',
  'no-adversarial': 'w_adv = 0',
  'no-attention': 'λ_attn = 0 (no class-attention probe)',
  'no-patch': 'λ_patch = 0',
  'with-patch': 'λ_patch = 1',
  'no-dafl-priors': 'w_oh = w_ie = 0 (no DAFL priors)',
  'no-ce': 'λ_CE = 0',
  'no-replay': 'one student step per batch',
  'no-affine-views': 'no affine views',
  unconditional: 'an unconditional generator',
  'random-init': 'student from random init',
  'with-contrastive': "CMI's contrastive term, w_cr = 0.8",
  'with-warmup': 'generator alone for the first 100 iterations',
  'with-label-std-1': 'label embedding initialised at std 1 (not 0.02)',
};

/** ablation-*.json: one row per variant; an unknown variant is described by its recorded overrides. */
export function ablationTable(r: ResultFile): string {
  const recorded = (r.config?.ablations ?? {}) as Record<string, { hparams?: Record<string, unknown>; studentInit?: string }>;
  const describe = (v: string): string => {
    if (ABLATION_LABELS[v]) return ABLATION_LABELS[v]!;
    const a = recorded[v];
    const parts = Object.entries(a?.hparams ?? {}).map(([k, x]) => `${k} = ${String(x)}`);
    if (a?.studentInit) parts.push(`student init ${a.studentInit}`);
    return parts.join(', ') || '—';
  };
  const rows = r.results.map((row) => [code(row.variant), describe(String(row.variant)), seedFigure(row, 'test_acc', 2, true), seedFigure(row, 'retention', 1, false), count(row.iterations)]);
  return markdownTable(['variant', 'what changes', 'test accuracy', 'retention', 'iterations'], rows);
}

const DETECT_LABELS: Record<string, (r: ResultFile) => string> = {
  scratch: (r) => `\`scratch\` (real labels, ${String(r.config?.scratch_epochs ?? '?')} epochs)`,
  tgan: () => '`tgan` (layout canvases)',
  kd: () => '`kd` (real canvases)',
};

/** detect.json: the students (the teacher's row is the prose above the table). */
export function detectTable(r: ResultFile): string {
  const best = r.summary?.best_method;
  const rows = r.results
    .filter((row) => row.model !== 'teacher')
    .map((row) => {
      const isBest = row.model === best;
      return [
        DETECT_LABELS[String(row.model)]?.(r) ?? code(row.model),
        row.data_free ? 'yes' : 'no',
        bold(mapFigure(row.map), isBest),
        mapFigure(row.ap50),
        bold(pct(row.map_retention, 1), isBest),
        row.iterations === undefined && row.model === 'scratch' ? `${String(r.config?.scratch_epochs ?? '?')} epochs` : count(row.iterations),
        count(row.seconds),
      ];
    });
  return markdownTable(['model', 'data-free', 'test mAP', 'AP50', 'retention', 'iterations', 'seconds'], rows);
}

/**
 * detect-tgan-60min.json: hand-made runs, each a change to an earlier one. Labels by the run's flags
 * (the session-5 runs predate recorded flags: their λ_bn), in this order; a new run goes last,
 * labelled by its flags. The best run on val mAP (how the defaults were picked) is in bold.
 */
const DETECT_RUN_LABELS: [flags: string, label: string, note?: string][] = [
  ['--lambda-bn 0', "λ_bn 0, 2 student steps per batch (the 40-minute bench's `tgan`)"],
  ['--lambda-bn 1', "λ_bn 1 (session 5's default)"],
  ['--fresh-batches 1 --student-steps 4 --nms-iou 1', '+ 4 student steps on fresh canvases (`--fresh-batches 1 --student-steps 4`)'],
  ['--fresh-batches 1 --student-steps 4 --nms-iou 0.5', '+ pseudo-target NMS 0.5 (`--nms-iou 0.5`)'],
  ['--fresh-batches 1 --student-steps 4 --nms-iou 0.5 --label-std 1', '+ label embedding std 1 (`--label-std 1`)'],
  ['--fresh-batches 1 --student-steps 4 --nms-iou 0.5 --eos-coef 0.5', '+ no-object weight 0.5 (`--eos-coef 0.5`; label std 0.02)'],
  ['--fresh-batches 1 --student-steps 4 --nms-iou 0.5 --eos-coef 1', '+ no-object weight 1 (`--eos-coef 1`; label std 0.02)'],
  ['--fresh-batches 1 --student-steps 4 --nms-iou 0.5 --eos-coef 0.5 --label-std 1', 'no-object weight 0.5 + label std 1 (`--eos-coef 0.5 --label-std 1`)'],
  [
    '--fresh-batches 1 --student-steps 4 --nms-iou 0.5 --eos-coef 1 --label-std 1 --generator-process',
    'no-object weight 1 + label std 1 (the defaults) + `--generator-process`',
    '(both cores)',
  ],
];

export function detectRunsTable(r: ResultFile): string {
  const key = (row: Row): string => (typeof row.flags === 'string' ? row.flags : `--lambda-bn ${String(row.lambda_bn)}`);
  const order = new Map(DETECT_RUN_LABELS.map(([k], i) => [k, i]));
  const labels = new Map(DETECT_RUN_LABELS.map(([k, label, note]) => [k, { label, note }]));
  const sorted = r.results
    .map((row, i) => ({ row, i, rank: order.get(key(row)) ?? DETECT_RUN_LABELS.length + i }))
    .sort((a, b) => a.rank - b.rank)
    .map((x) => x.row);
  const bestVal = Math.max(...sorted.map((row) => num(row.val_map)).filter((x) => !Number.isNaN(x)));
  const rows = sorted.map((row) => {
    const isBest = num(row.val_map) === bestVal;
    const steps = num(row.student_steps);
    const l = labels.get(key(row));
    return [
      l ? `${bold(l.label, isBest)}${l.note ? ` ${l.note}` : ''}` : bold(code(key(row)), isBest),
      bold(fixed(row.val_map, 4), isBest),
      bold(fixed(row.test_map, 4), isBest),
      bold(fixed(row.test_ap50, 3), isBest),
      bold(pct(row.map_retention, 1), isBest),
      `${count(row.iterations)}${Number.isNaN(steps) ? '' : ` (${count(num(row.iterations) * steps)})`}`,
    ];
  });
  return markdownTable(['`tgan` run', 'val mAP', 'test mAP', 'AP50', 'retention', 'iterations (student steps)'], rows);
}

/**
 * infer.json: teacher and student rows per pair and batch, as bench/infer.ts's infer.md. An int8 row
 * (role 'student-int8', bench/infer.ts) reads as the int8 file: its own test accuracy (`test_acc_int8`,
 * with `int8_vs_float`; the row's `test_acc` is the float student's), its speed-up over the teacher and
 * over the float student (`speedup_vs_float`), and its size with the ratio to the float file
 * (`size_ratio_vs_float`). The columns are the same with or without int8 rows.
 */
export function inferTable(r: ResultFile): string {
  const rows = r.results.map((row) => {
    const int8 = row.role === 'student-int8';
    const student = row.role === 'student' || int8;
    const acc = int8 ? pct(row.test_acc_int8, 2) : pct(row.test_acc, 2);
    return [
      code(row.model), int8 ? 'student int8' : String(row.role), String(row.batch), fixed(row.p50_ms, 3), fixed(row.p95_ms, 3), fixed(row.throughput, 0),
      student ? `${fixed(row.speedup_vs_teacher, 2)}×${int8 ? ` (${fixed(row.speedup_vs_float, 2)}× vs float)` : ''}` : '1×',
      count(row.params), fixed(row.mflops, 1),
      `${fixed(num(row.bytes) / 1024, 1)}${int8 ? ` (${fixed(row.size_ratio_vs_float, 2)}× smaller)` : ''}`,
      int8 && acc !== '—' ? `${acc} (${pct(row.int8_vs_float, 1)} of float)` : acc,
      student ? pct(row.retention, 2) : '',
    ];
  });
  return markdownTable(
    ['model', 'role', 'batch', 'p50 ms', 'p95 ms', 'images/s', 'speed-up', 'params', 'MFLOPs', '.onnx KiB', 'test acc (ORT)', 'retention'],
    rows,
  );
}

/** The accuracy targets the shipped classification teachers were trained for (the project's brief). */
const TEACHER_TARGETS: Record<string, number> = { 'mnist-vit': 0.975, 'fashion-vit': 0.9 };
const DATASET_ORDER = ['mnist', 'fashion-mnist', 'cifar10'];

/**
 * teacher.json: the classification teachers (the detection teacher is the prose under the table),
 * MNIST first, the larger teacher of a dataset first.
 */
export function teacherTable(r: ResultFile): string {
  const rank = (d: unknown): number => {
    const i = DATASET_ORDER.indexOf(String(d));
    return i < 0 ? DATASET_ORDER.length : i;
  };
  const rows = r.results
    .filter((row) => typeof row.test_acc === 'number')
    .sort((a, b) => rank(a.dataset) - rank(b.dataset) || num(b.params) - num(a.params))
    .map((row) => {
      const seed = /--seed (\d+)/.exec(String(row.command ?? ''))?.[1] ?? '—';
      const target = TEACHER_TARGETS[String(row.teacher)];
      const acc = `**${pct(row.test_acc, 2)}**`;
      const verdict = target === undefined ? '' : ` (target ${(100 * target).toFixed(1).replace(/\.0$/, '')}%: ${num(row.test_acc) >= target ? 'met' : '**not met**'})`;
      return [
        code(`teachers/${String(row.teacher)}`), row.command ? code(row.command) : '—', seed, typeof row.epochs === 'string' ? row.epochs : count(row.epochs), `${count(row.seconds)} s`,
        count(row.params), fixed(num(row.flops) / 1e6, 2), acc + verdict,
      ];
    });
  return markdownTable(['teacher', 'command', 'seed', 'epochs', 'wall time', 'params', 'MFLOPs', 'test accuracy'], rows);
}

/** The renderer for a result file's name: exact names first, then the families. */
export function rendererFor(name: string): ((r: ResultFile) => string) | undefined {
  const exact: Record<string, (r: ResultFile) => string> = {
    detect: detectTable,
    'detect-tgan-60min': detectRunsTable,
    infer: inferTable,
    teacher: teacherTable,
  };
  if (exact[name]) return exact[name];
  if (name.startsWith('distill-')) return distillTable;
  if (name.startsWith('ablation-')) return ablationTable;
  return undefined;
}

/** The line under every table: where its figures come from and how to make them again. */
export function sourceLine(name: string, r: ResultFile): string {
  const commit = r.commit && r.commit !== 'unknown' ? `commit \`${r.commit.slice(0, 10)}\`` : 'commit not recorded';
  const date = r.date ? r.date.slice(0, 10) : 'date not recorded';
  const command = r.command ? `command \`${r.command}\`` : 'command not recorded';
  return `<sub>Generated by \`${FIX_COMMAND}\` from \`bench/results/${name}.json\` (${commit}, ${date}; ${command}).</sub>`;
}

/** A result file's whole block body: the table, a blank line, the source line. */
export function renderBlock(name: string, r: ResultFile): string {
  const render = rendererFor(name);
  if (!render) throw new Error(`no table renderer for bench/results/${name}.json (bench/readme.ts rendererFor)`);
  return `${render(r)}\n\n${sourceLine(name, r)}`;
}

/** Reads and checks a result file; throws an error naming the file and what is wrong. */
export function readResultFile(file: string): ResultFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not readable JSON (${(e as Error).message})`);
  }
  const r = parsed as Partial<ResultFile> | null;
  if (r === null || typeof r !== 'object' || !Array.isArray(r.results)) throw new Error(`${file}: no "results" array`);
  if (r.results.some((row) => row === null || typeof row !== 'object')) throw new Error(`${file}: a "results" entry is not an object`);
  return r as ResultFile;
}

// ---- the marked blocks of the README ----

export interface Block {
  name: string;
  /** Offsets of the block's body: after the opening marker's line, up to the closing marker's line. */
  start: number;
  end: number;
  body: string;
}

const OPEN = /^<!-- bench:([A-Za-z0-9._-]+) -->[ \t]*$/gm;

/** Every `<!-- bench:x -->` … `<!-- /bench:x -->` block; a missing, misplaced or repeated marker is an error. */
export function findBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const seen = new Set<string>();
  const lineOf = (at: number): number => text.slice(0, at).split('\n').length;
  for (const m of text.matchAll(OPEN)) {
    const name = m[1]!;
    if (seen.has(name)) throw new Error(`README: a second <!-- bench:${name} --> block (line ${lineOf(m.index!)}); each result file has one block`);
    seen.add(name);
    const start = m.index! + m[0].length + 1;
    const closeMarker = `<!-- /bench:${name} -->`;
    const end = text.indexOf(`\n${closeMarker}`, start - 1);
    const nextOpen = text.slice(start).search(/^<!-- bench:/m);
    if (end < 0 || (nextOpen >= 0 && start + nextOpen < end)) {
      throw new Error(`README: <!-- bench:${name} --> (line ${lineOf(m.index!)}) has no ${closeMarker} before the next block or the end; add it under the table`);
    }
    blocks.push({ name, start, end: end + 1, body: text.slice(start, end + 1).replace(/\n$/, '') });
  }
  const stray = /^<!-- \/bench:([A-Za-z0-9._-]+) -->/gm;
  for (const m of text.matchAll(stray)) {
    if (!seen.has(m[1]!)) throw new Error(`README: <!-- /bench:${m[1]} --> (line ${lineOf(m.index!)}) closes no block`);
  }
  return blocks;
}

export interface BlockOutcome {
  name: string;
  /** same: matches its file; changed: differs (diff); missing: no file (left as is); error: file unusable (left as is). */
  status: 'same' | 'changed' | 'missing' | 'error';
  message?: string;
  diff?: string;
}

/** A short line diff of two small texts (LCS), only the changed lines, at most `max` of them. */
export function shortDiff(before: string, after: string, max = 12): string {
  const a = before.split('\n');
  const b = after.split('\n');
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      i++;
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`- ${a[i++]}`);
    else out.push(`+ ${b[j++]}`);
  }
  return out.length > max ? [...out.slice(0, max), `… ${out.length - max} more changed lines`].join('\n') : out.join('\n');
}

/** The README with every block whose file is present and readable rendered afresh, and what happened to each. */
export function updateReadme(text: string, resultsDir = RESULTS_DIR): { text: string; outcomes: BlockOutcome[] } {
  const blocks = findBlocks(text);
  const outcomes: BlockOutcome[] = [];
  let out = '';
  let at = 0;
  for (const b of blocks) {
    const file = join(resultsDir, `${b.name}.json`);
    let body = b.body;
    if (!existsSync(file)) {
      outcomes.push({ name: b.name, status: 'missing', message: `bench/results/${b.name}.json does not exist yet: block left as it is` });
    } else {
      try {
        body = renderBlock(b.name, readResultFile(file));
        outcomes.push(body === b.body ? { name: b.name, status: 'same' } : { name: b.name, status: 'changed', diff: shortDiff(b.body, body) });
      } catch (e) {
        outcomes.push({ name: b.name, status: 'error', message: (e as Error).message });
        body = b.body;
      }
    }
    out += text.slice(at, b.start) + (body === '' ? '' : `${body}\n`);
    at = b.end;
  }
  return { text: out + text.slice(at), outcomes };
}

/** The messages of a check: one paragraph per block that differs or failed, and how to fix it. */
export function describeOutcomes(outcomes: BlockOutcome[], check: boolean): string {
  const lines: string[] = [];
  for (const o of outcomes) {
    if (o.status === 'missing') lines.push(`warning: bench:${o.name}: ${o.message}`);
    if (o.status === 'error') lines.push(`error: bench:${o.name}: ${o.message}`);
    if (o.status === 'changed') lines.push(`${check ? 'differs' : 'rewrote'}: bench:${o.name} (bench/results/${o.name}.json)\n${o.diff!.replace(/^/gm, '    ')}`);
  }
  const changed = outcomes.filter((o) => o.status === 'changed').map((o) => o.name);
  if (check && changed.length) lines.push(`README.md's tables ${changed.join(', ')} differ from bench/results; run \`${FIX_COMMAND}\` to rewrite them`);
  return lines.join('\n');
}

/**
 * Rewrites (or with `check` compares) the README's blocks. Returns whether the README agrees with
 * the files (check) or was written without errors; a marker error leaves the file untouched.
 */
export function syncReadme(o: { readme?: string; resultsDir?: string; check?: boolean; log?: (s: string) => void } = {}): { ok: boolean; outcomes: BlockOutcome[] } {
  const readme = o.readme ?? README_PATH;
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const before = readFileSync(readme, 'utf8');
  const { text, outcomes } = updateReadme(before, o.resultsDir);
  const message = describeOutcomes(outcomes, o.check ?? false);
  if (message) log(message);
  const errors = outcomes.some((x) => x.status === 'error');
  if (o.check) return { ok: !errors && outcomes.every((x) => x.status !== 'changed'), outcomes };
  if (text !== before) writeFileAtomic(readme, text);
  log(`${readme}: ${outcomes.filter((x) => x.status === 'changed').length} of ${outcomes.length} tables rewritten`);
  return { ok: !errors, outcomes };
}

export function benchReadme(check: boolean): Promise<string> {
  const { ok } = syncReadme({ check });
  if (!ok) process.exitCode = 1;
  else if (check) process.stderr.write(`README.md's tables agree with bench/results\n`);
  return Promise.resolve(README_PATH);
}

// HTML reports: one per run folder (report.html) and one comparing methods for the benchmarks.
//
// The pages are self-contained (inline CSS and SVG, no scripts, no external assets); pictures are
// relative <img> links into the run folder, so a report works when opened from disk. Every piece
// of text that comes from a file is escaped. A missing or damaged file becomes a note in the page,
// never an exception, so a report can be written while a run is still going.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { escapeXml, layoutPathFor } from './common.js';
import { lineChart, type Series } from './svg.js';

export const escapeHtml = escapeXml;

export type MetricsRow = Record<string, unknown>;

/** Parses metrics.jsonl: one JSON object per line; blank and unparsable lines (e.g. a torn last line) are skipped and counted. */
export function parseMetrics(text: string): { rows: MetricsRow[]; skipped: number } {
  const rows: MetricsRow[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v: unknown = JSON.parse(line);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) rows.push(v as MetricsRow);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { rows, skipped };
}

export interface SampleImage {
  /** Path relative to the run folder, with '/' separators. */
  file: string;
  /** The iteration number from the file name (its last run of digits), or null. */
  iteration: number | null;
  /** The grid's layout sidecar (see png.ts saveGridLayout), when there is one. */
  layout?: Record<string, unknown>;
}

/** The run's `samples/*.png`, ordered by the iteration number in their names (names without one last). */
export function listSamples(runDir: string): SampleImage[] {
  const dir = path.join(runDir, 'samples');
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /\.png$/i.test(n) && !n.startsWith('.'));
  } catch {
    return [];
  }
  const out: SampleImage[] = names.map((n) => {
    const m = /(\d+)(?!.*\d)/.exec(n.replace(/\.png$/i, ''));
    const s: SampleImage = { file: `samples/${n}`, iteration: m ? Number(m[1]) : null };
    const lp = layoutPathFor(path.join(dir, n));
    if (fs.existsSync(lp)) {
      try {
        const v: unknown = JSON.parse(fs.readFileSync(lp, 'utf8'));
        if (v !== null && typeof v === 'object') s.layout = v as Record<string, unknown>;
      } catch {
        /* a damaged sidecar only loses the caption's detail */
      }
    }
    return s;
  });
  out.sort((a, b) => {
    if (a.iteration !== null && b.iteration !== null && a.iteration !== b.iteration) return a.iteration - b.iteration;
    if (a.iteration === null && b.iteration !== null) return 1;
    if (a.iteration !== null && b.iteration === null) return -1;
    return a.file < b.file ? -1 : a.file > b.file ? 1 : 0;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Value formatting

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function human(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  return `${(n / 1e3).toFixed(1)}k`;
}

function duration(s: number): string {
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h > 0 ? `${h}h ${m}m ${sec}s` : `${m}m ${sec}s`;
}

const FRACTION_KEY = /(^|[_/.\s-])(acc|accuracy|retention|map|ap50|ap75|ap)($|[_/.\s-])|_acc$|^acc_|accuracy/i;
const SECONDS_KEY = /(^|[_/.])(seconds|secs|wall_s|time_s)$/i;

/** A cell's text for a value: numbers to 6 significant digits with a readable hint (%, k/M/G, m/s). */
export function formatValue(key: string, v: unknown): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    const raw = Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
    const leaf = key.split('.').pop() ?? key;
    if (FRACTION_KEY.test(leaf) && v >= 0 && v <= 1 && !Number.isInteger(v)) return `${raw} (${(100 * v).toFixed(2)}%)`;
    if (SECONDS_KEY.test(leaf) && v >= 60) return `${raw} (${duration(v)})`;
    if (Number.isInteger(v) && Math.abs(v) >= 1e4 && !/seed|iter|step|epoch/i.test(leaf)) return `${raw} (${human(v)})`;
    return raw;
  }
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Flattens nested plain objects to dotted keys; arrays and other values stay whole. */
export function flatten(obj: Record<string, unknown>, prefix = '', out: [string, unknown][] = []): [string, unknown][] {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isPlainObject(v) && Object.keys(v).length > 0) flatten(v, key, out);
    else out.push([key, v]);
  }
  return out;
}

function keyValueTable(obj: Record<string, unknown>, cls = 'kv'): string {
  const rows = flatten(obj).map(([k, v]) => {
    const cell = Array.isArray(v) && v.length > 0 && v.every(isPlainObject) ? recordsTable(v) : `<code>${escapeHtml(formatValue(k, v))}</code>`;
    return `<tr><th scope="row">${escapeHtml(k)}</th><td>${cell}</td></tr>`;
  });
  return `<table class="${cls}"><tbody>${rows.join('')}</tbody></table>`;
}

/** A table with one row per record and the union of their (flattened) keys as columns. */
function recordsTable(records: readonly Record<string, unknown>[]): string {
  const flat = records.map((r) => new Map(flatten(r)));
  const cols: string[] = [];
  for (const m of flat) for (const k of m.keys()) if (!cols.includes(k)) cols.push(k);
  const head = `<tr>${cols.map((c) => `<th scope="col">${escapeHtml(c)}</th>`).join('')}</tr>`;
  const body = flat
    .map((m) => `<tr>${cols.map((c) => (m.has(c) ? `<td>${escapeHtml(formatValue(c, m.get(c)))}</td>` : '<td class="na">—</td>')).join('')}</tr>`)
    .join('');
  return `<table class="grid"><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

// ---------------------------------------------------------------------------------------------
// Page frame

const CSS = `
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; background: #fafafa; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 60px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 32px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.sub { color: #666; margin: 0 0 16px; }
.note { color: #8a5a00; background: #fff7e0; border: 1px solid #f0d890; padding: 6px 10px; border-radius: 4px; }
table { border-collapse: collapse; background: #fff; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
table.grid th { background: #f2f2f2; }
table.kv th { background: #f7f7f7; font-weight: 600; white-space: nowrap; }
td code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-word; }
td.na { color: #aaa; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { background: #fff; border: 1px solid #e3e3e3; border-radius: 4px; max-width: 100%; overflow-x: auto; }
.chart svg { display: block; max-width: 100%; height: auto; }
.samples { display: flex; flex-direction: column; gap: 18px; }
figure { margin: 0; background: #fff; border: 1px solid #e3e3e3; border-radius: 4px; padding: 10px; }
figure img { image-rendering: pixelated; max-width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 0.92em; margin-top: 6px; }
ul.files { padding-left: 20px; }
footer { color: #888; font-size: 0.85em; margin-top: 40px; }
`;

function page(title: string, body: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body><main>',
    body,
    `<footer>Written by vit-dfkd on ${escapeHtml(new Date().toISOString())}.</footer>`,
    '</main></body>',
    '</html>',
    '',
  ].join('\n');
}

function chartBox(svg: string): string {
  return `<div class="chart">${svg}</div>`;
}

/** Relative URL of a path inside the run folder ('/' separated), each segment percent-encoded. */
function relUrl(rel: string): string {
  return rel.split('/').map(encodeURIComponent).join('/');
}

// ---------------------------------------------------------------------------------------------
// Metrics → charts

const X_KEYS = ['iteration', 'iter', 'step', 'epoch'];
const TIME_KEYS = ['seconds', 'time', 'elapsed', 'wall_s', 'timestamp'];
const isAccKey = (k: string): boolean => /(^|_|\/)acc(uracy)?$|^acc(uracy)?(_|\/)/i.test(k);
const isLrKey = (k: string): boolean => /(^|_|\/)lr$|^lr(_|\/)|learning_rate/i.test(k);

function numeric(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function seriesOf(rows: readonly MetricsRow[], xKey: string | null, yKey: string): Series {
  const points: [number, number][] = [];
  rows.forEach((r, i) => {
    const y = numeric(r[yKey]);
    const x = xKey === null ? i + 1 : numeric(r[xKey]);
    if (y !== undefined && x !== undefined) points.push([x, y]);
  });
  return { name: yKey, points };
}

const within01 = (series: readonly Series[]): boolean =>
  series.every((s) => s.points.every((p) => !Number.isFinite(p[1]) || (p[1] >= 0 && p[1] <= 1)));

/** The charts of a metrics log: accuracy vs time and vs iteration, then losses by prefix (G/, S/, …). */
export function metricsCharts(rows: readonly MetricsRow[]): { title: string; svg: string }[] {
  if (rows.length === 0) return [];
  const keys: string[] = [];
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && !keys.includes(k)) keys.push(k);
  const xKey = X_KEYS.find((k) => keys.includes(k)) ?? null;
  const xLabel = xKey ?? 'log line';
  const tKey = TIME_KEYS.find((k) => keys.includes(k)) ?? null;
  const accKeys = keys.filter(isAccKey);
  const lrKeys = keys.filter((k) => !isAccKey(k) && isLrKey(k));
  const skip = new Set<string>([...X_KEYS, ...TIME_KEYS, ...accKeys, ...lrKeys]);
  const lossKeys = keys.filter((k) => !skip.has(k));

  const out: { title: string; svg: string }[] = [];
  const add = (title: string, series: Series[], x: string, y: string, yRange?: [number, number]): void => {
    if (series.every((s) => s.points.length === 0)) return;
    out.push({ title, svg: lineChart({ title, series, xLabel: x, yLabel: y, ...(yRange ? { yRange } : {}) }) });
  };

  if (accKeys.length > 0) {
    const acc = (x: string | null): Series[] => accKeys.map((k) => seriesOf(rows, x, k));
    if (tKey) {
      const s = acc(tKey);
      add(`Accuracy vs ${tKey}`, s, tKey, 'accuracy', within01(s) ? [0, 1] : undefined);
    }
    const s = acc(xKey);
    add(`Accuracy vs ${xLabel}`, s, xLabel, 'accuracy', within01(s) ? [0, 1] : undefined);
  }
  // losses grouped by the prefix before the first '/'
  const groups = new Map<string, string[]>();
  for (const k of lossKeys) {
    const g = k.includes('/') ? k.slice(0, k.indexOf('/')) : '';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(k);
  }
  const named: Record<string, string> = { G: 'Generator / synthesis losses (G/…)', S: 'Student losses (S/…)' };
  const order = [...groups.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  for (const g of order) {
    if (g === 'synth') {
      // The collapse guard (distill/collapse.ts), beside the validation curve: classes the teacher
      // sees in the synthetic batches, their shares, and within-class diversity.
      const ks = groups.get(g)!;
      const shares = ks.filter((k) => k.startsWith('synth/share_'));
      add('Synthetic batches: classes the teacher sees (synth/classes)', ks.filter((k) => k === 'synth/classes').map((k) => seriesOf(rows, xKey, k)), xLabel, 'classes');
      if (shares.length > 0) add('Synthetic batches: share of each class (synth/share_c)', shares.map((k) => seriesOf(rows, xKey, k)), xLabel, 'share', [0, 1]);
      add('Synthetic batches: within-class diversity and collapsed fraction', ks.filter((k) => k === 'synth/diversity' || k === 'synth/collapsed').map((k) => seriesOf(rows, xKey, k)), xLabel, 'value');
      continue;
    }
    const title = g === '' ? 'Other metrics' : (named[g] ?? `${g}/… metrics`);
    add(title, groups.get(g)!.map((k) => seriesOf(rows, xKey, k)), xLabel, g === '' ? 'value' : 'loss');
  }
  if (lrKeys.length > 0) add('Learning rate', lrKeys.map((k) => seriesOf(rows, xKey, k)), xLabel, 'learning rate');
  return out;
}

function rank(g: string): number {
  return g === 'G' ? 0 : g === 'S' ? 1 : g === '' ? 3 : 2;
}

// ---------------------------------------------------------------------------------------------
// Run report

function readJson(file: string, notes: string[]): unknown {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    notes.push(`${path.basename(file)} could not be read: ${(e as Error).message}`);
    return undefined;
  }
}

function sampleCaption(s: SampleImage): string {
  const parts = [s.iteration !== null ? `iteration ${s.iteration}` : 'samples', `<code>${escapeHtml(s.file)}</code>`];
  const L = s.layout;
  if (L && Array.isArray(L.classes)) {
    const classes = L.classes as unknown[];
    const counts = Array.isArray(L.counts) ? (L.counts as unknown[]) : [];
    const names = Array.isArray(L.classNames) ? (L.classNames as unknown[]) : [];
    const rows = classes.map((c, r) => {
      const name = names[r] !== undefined ? `${String(names[r])} = class ${String(c)}` : `class ${String(c)}`;
      return counts[r] !== undefined ? `${name} (${String(counts[r])})` : name;
    });
    const what = counts.length > 0 ? ' (in brackets: images of that class in the batch)' : '';
    parts.push(`rows, top to bottom${what}: ${escapeHtml(rows.join(', '))}`);
  } else if (L && Array.isArray(L.rowLabels)) {
    parts.push(`rows: ${escapeHtml((L.rowLabels as unknown[]).map(String).join(', '))}`);
  }
  return parts.join(' — ');
}

export interface RunReportOptions {
  /** Page title; default "Run <folder name>". */
  title?: string;
}

/** The HTML of a run folder's report (see writeRunReport). */
export function renderRunReport(runDir: string, opts: RunReportOptions = {}): string {
  const notes: string[] = [];
  const name = path.basename(path.resolve(runDir));
  const title = opts.title ?? `Run ${name}`;
  const body: string[] = [`<h1>${escapeHtml(title)}</h1>`];

  const config = readJson(path.join(runDir, 'config.json'), notes);
  const result = readJson(path.join(runDir, 'result.json'), notes);
  let rows: MetricsRow[] = [];
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  if (fs.existsSync(metricsFile)) {
    const m = parseMetrics(fs.readFileSync(metricsFile, 'utf8'));
    rows = m.rows;
    if (m.skipped > 0) notes.push(`metrics.jsonl: ${m.skipped} line(s) could not be parsed and were skipped`);
  }

  // subtitle: method and latest progress
  const sub: string[] = [];
  if (isPlainObject(config)) {
    for (const k of ['method', 'dataset', 'teacher', 'student']) {
      if (typeof config[k] === 'string' || typeof config[k] === 'number') sub.push(`${k}: ${String(config[k])}`);
    }
  }
  const last = rows[rows.length - 1];
  if (last) {
    for (const k of [...X_KEYS, 'seconds']) if (typeof last[k] === 'number') sub.push(`${k} ${formatValue(k, last[k])}`);
    const lastAcc = [...rows].reverse().find((r) => typeof r.val_acc === 'number');
    if (lastAcc) sub.push(`latest val_acc ${formatValue('val_acc', lastAcc.val_acc)}`);
  }
  if (sub.length > 0) body.push(`<p class="sub">${escapeHtml(sub.join(' · '))}</p>`);

  // result table
  body.push('<h2>Result</h2>');
  if (isPlainObject(result)) body.push(keyValueTable(result, 'kv result'));
  else if (Array.isArray(result) && result.every(isPlainObject)) body.push(recordsTable(result));
  else if (result !== undefined) body.push(`<p><code>${escapeHtml(JSON.stringify(result))}</code></p>`);
  else body.push('<p class="sub">No result.json yet (the run may still be going).</p>');

  // charts
  body.push('<h2>Curves</h2>');
  const charts = metricsCharts(rows);
  if (charts.length > 0) body.push(`<div class="charts">${charts.map((c) => chartBox(c.svg)).join('\n')}</div>`);
  else body.push(`<p class="sub">${rows.length === 0 ? 'No metrics logged yet.' : 'No numeric metrics to plot.'}</p>`);

  // samples
  const samples = listSamples(runDir);
  body.push('<h2>Synthetic samples</h2>');
  if (samples.length > 0) {
    body.push('<div class="samples">');
    for (const s of samples) {
      const alt = s.iteration !== null ? `samples at iteration ${s.iteration}` : `samples ${s.file}`;
      body.push(`<figure><img src="${escapeHtml(relUrl(s.file))}" alt="${escapeHtml(alt)}" loading="lazy"><figcaption>${sampleCaption(s)}</figcaption></figure>`);
    }
    body.push('</div>');
  } else body.push('<p class="sub">No sample grids in samples/.</p>');

  // config
  body.push('<h2>Configuration</h2>');
  if (isPlainObject(config)) {
    const n = flatten(config).length;
    body.push(`<details><summary>config.json (${n} setting${n === 1 ? '' : 's'})</summary>${keyValueTable(config)}</details>`);
  } else if (config !== undefined) body.push(`<p><code>${escapeHtml(JSON.stringify(config))}</code></p>`);
  else body.push('<p class="sub">No config.json.</p>');

  // files
  const files = ['config.json', 'metrics.jsonl', 'result.json', 'student.onnx', 'checkpoints'].filter((f) => fs.existsSync(path.join(runDir, f)));
  if (files.length > 0) {
    body.push('<h2>Files</h2><ul class="files">');
    for (const f of files) body.push(`<li><a href="${escapeHtml(relUrl(f))}">${escapeHtml(f)}</a></li>`);
    body.push('</ul>');
  }

  if (notes.length > 0) body.splice(1, 0, ...notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`));
  return page(title, body.join('\n'));
}

/**
 * Writes `<runDir>/report.html` (atomically) from config.json, metrics.jsonl, result.json and
 * samples/*.png. Returns the path written.
 */
export function writeRunReport(runDir: string, opts: RunReportOptions = {}): string {
  const file = path.join(runDir, 'report.html');
  writeFileAtomic(file, renderRunReport(runDir, opts));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Comparison report (benchmarks)

export interface ComparisonOptions {
  title?: string;
  /** A line under the title, e.g. the command that made the numbers. */
  subtitle?: string;
  xLabel?: string;
  yLabel?: string;
  /** Extra key/value facts shown under the table (e.g. the bench's `summary`). */
  summary?: Record<string, unknown>;
}

/** The HTML of a comparison: a table (one row per record) and an accuracy-vs-time chart (one series per method). */
export function renderComparisonReport(rows: readonly Record<string, unknown>[], curves: readonly Series[], opts: ComparisonOptions = {}): string {
  const title = opts.title ?? 'Method comparison';
  const body: string[] = [`<h1>${escapeHtml(title)}</h1>`];
  if (opts.subtitle) body.push(`<p class="sub">${escapeHtml(opts.subtitle)}</p>`);
  body.push('<h2>Results</h2>');
  body.push(rows.length > 0 ? recordsTable(rows) : '<p class="sub">No rows.</p>');
  if (opts.summary && Object.keys(opts.summary).length > 0) body.push(keyValueTable(opts.summary));
  if (curves.length > 0) {
    const yLabel = opts.yLabel ?? 'test accuracy';
    const xLabel = opts.xLabel ?? 'seconds';
    body.push(`<h2>${escapeHtml(yLabel)} vs ${escapeHtml(xLabel)}</h2>`);
    const svg = lineChart({
      title: `${yLabel} vs ${xLabel}`,
      series: curves,
      xLabel,
      yLabel,
      width: 760,
      height: 380,
      ...(within01(curves) ? { yRange: [0, 1] as [number, number] } : {}),
    });
    body.push(`<div class="charts">${chartBox(svg)}</div>`);
  }
  return page(title, body.join('\n'));
}

/** Writes a comparison report to `file` atomically. */
export function writeComparisonReport(file: string, rows: readonly Record<string, unknown>[], curves: readonly Series[], opts: ComparisonOptions = {}): void {
  writeFileAtomic(file, renderComparisonReport(rows, curves, opts));
}

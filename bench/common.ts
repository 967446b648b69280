// Shared benchmark plumbing: machine description, result files (JSON + a printed table).
import { execSync } from 'node:child_process';
import { cpus, availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeJsonAtomic } from '../src/util/fs.js';

export const BENCH_DIR = fileURLToPath(new URL('../../bench/', import.meta.url));

export function gitCommit(): string {
  try {
    return execSync('git rev-parse HEAD', { cwd: BENCH_DIR, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

export function machine(): { cpus: number; model: string; memory_gb: number } {
  return { cpus: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', memory_gb: Math.round(totalmem() / 2 ** 30) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

export interface BenchResult {
  name: string;
  config: Record<string, unknown>;
  results: Record<string, unknown>[];
  summary?: Record<string, unknown>;
}

/** Writes bench/results/<name>.json (atomically) and prints the rows as a table. */
export function report(r: BenchResult, outDir = join(BENCH_DIR, 'results')): string {
  const file = join(outDir, `${r.name}.json`);
  writeJsonAtomic(file, { ...r, commit: gitCommit(), date: new Date().toISOString(), machine: machine() });
  printTable(r.results);
  if (r.summary) process.stdout.write(`summary: ${JSON.stringify(r.summary)}\n`);
  process.stdout.write(`wrote ${file}\n`);
  return file;
}

export function printTable(rows: Record<string, unknown>[]): void {
  if (rows.length === 0) return;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v ?? ''));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => fmt(r[c]).length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |\n`;
  process.stdout.write(line(cols));
  process.stdout.write(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) process.stdout.write(line(cols.map((c) => fmt(r[c]))));
}

// Shared benchmark plumbing: machine description, result files (JSON + a printed table).
import { execSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

/** A word as a POSIX shell reads it back: as is when plain, else in single quotes ('\'' for a quote). */
export function shellQuote(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** Writes bench/results/<name>.json (atomically) and prints the rows as a table. */
export function report(r: BenchResult, outDir = join(BENCH_DIR, 'results')): string {
  const file = join(outDir, `${r.name}.json`);
  // The exact command, so that a figure can be regenerated (issue 17).
  const command = `npm run bench -- ${process.argv.slice(2).map(shellQuote).join(' ')}`;
  writeJsonAtomic(file, { ...r, commit: gitCommit(), date: new Date().toISOString(), machine: machine(), command });
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

/** JSON with object keys sorted: equal for equal configurations whatever the key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v as object).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Runs `labels` as child processes of this bench (`--only <label> --jobs 1`, 1 thread each: VIT_DFKD_THREADS
 * 1 and the parent's `--threads` dropped), `jobs` at a time, each child's log prefixed with its label.
 * The parent then finds them finished.
 */
export async function runInParallel(labels: string[], jobs: number, argv: string[]): Promise<void> {
  const base: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    // a child runs one label at 1 thread: the parent's --jobs, --only and --threads are not its own
    if (argv[i] === '--jobs' || argv[i] === '--only' || argv[i] === '--threads') i++;
    else base.push(argv[i]!);
  }
  const queue = [...labels];
  const failures: string[] = [];
  const worker = async (): Promise<void> => {
    for (let label = queue.shift(); label !== undefined; label = queue.shift()) {
      const l = label;
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, [...base, '--only', l, '--jobs', '1'], {
          env: { ...process.env, VIT_DFKD_THREADS: '1' },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let partial = '';
        child.stderr.on('data', (d: Buffer) => {
          const lines = (partial + d.toString()).split(/\r|\n/);
          partial = lines.pop() ?? '';
          for (const line of lines) if (line.trim() !== '') process.stderr.write(`[${l}] ${line}\n`);
        });
        child.on('close', (c) => resolve(c ?? 1));
      });
      if (code !== 0) failures.push(`${l} (exit ${code})`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, labels.length) }, worker));
  if (failures.length) throw new Error(`bench runs failed: ${failures.join(', ')}; their logs are above`);
}

/**
 * A bench row memoised in `<dir>/bench-row.json` together with the configuration that produced it:
 * returned as is when `want` is that configuration (runs made by `--jobs` children, or a table that
 * was interrupted), computed by `run` and recorded otherwise.
 */
export function memoRow<T>(dir: string, want: unknown, run: () => T, label = dir): T {
  const file = join(dir, 'bench-row.json');
  if (existsSync(file)) {
    try {
      const m = JSON.parse(readFileSync(file, 'utf8')) as { want: unknown; row: T };
      if (canonical(m.want) === canonical(want)) {
        process.stderr.write(`\n== ${label}: reusing the finished run in ${dir} (same configuration)\n`);
        return m.row;
      }
    } catch {
      // unreadable: run again
    }
  }
  const row = run();
  writeJsonAtomic(file, { want, row });
  return row;
}

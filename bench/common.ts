// Shared benchmark plumbing: machine description, result files (JSON + a printed table).
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, availableParallelism, tmpdir, totalmem } from 'node:os';
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

/** The environment variable that makes a `--jobs` child a filler run (its value: the folder it writes into). */
export const FILLER_ENV = 'VIT_DFKD_BENCH_FILLER';

/**
 * The folder a bench's runs go to: `bench/runs/<name>`, or a filler child's scratch folder (see
 * runInParallel's `filler`), so that a filler never touches the table's runs.
 */
export function benchRunsDir(name: string): string {
  return process.env[FILLER_ENV] || join(BENCH_DIR, 'runs', name);
}

/**
 * Runs `labels` as child processes of this bench (`--only <label> --jobs 1`, 1 thread each: VIT_DFKD_THREADS
 * 1 and the parent's `--threads` dropped), `jobs` at a time, each child's log prefixed with its label.
 * The parent then finds them finished.
 *
 * With `filler`, a worker that finds the queue empty while other runs go on starts a filler: the last
 * label again, into a scratch folder (FILLER_ENV), killed and removed once every real run has ended.
 * Wall-clock-budgeted runs are then never alone on the machine: without it, the last of an odd number
 * of runs had both cores' memory bandwidth to itself and did ~1.5× the iterations of the others (seed 2
 * of every 3-seed table with `--jobs 2`). Returns how many fillers were started.
 */
export async function runInParallel(labels: string[], jobs: number, argv: string[], opts: { filler?: boolean } = {}): Promise<number> {
  const base: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    // a child runs one label at 1 thread: the parent's --jobs, --only and --threads are not its own
    if (argv[i] === '--jobs' || argv[i] === '--only' || argv[i] === '--threads') i++;
    else base.push(argv[i]!);
  }
  const queue = [...labels];
  const failures: string[] = [];
  const workers = Math.min(jobs, labels.length);
  let running = 0;
  const fillers: { child: ChildProcess; dir: string }[] = [];
  const start = (label: string, prefix: string, env: NodeJS.ProcessEnv): ChildProcess => {
    const child = spawn(process.execPath, [...base, '--only', label, '--jobs', '1'], {
      env: { ...process.env, VIT_DFKD_THREADS: '1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let partial = '';
    child.stderr!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split(/\r|\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') process.stderr.write(`[${prefix}] ${line}\n`);
    });
    return child;
  };
  const worker = async (): Promise<void> => {
    for (let label = queue.shift(); label !== undefined; label = queue.shift()) {
      const l = label;
      running++;
      const code = await new Promise<number>((resolve) => {
        start(l, l, {}).on('close', (c) => resolve(c ?? 1));
      });
      running--;
      if (code !== 0) failures.push(`${l} (exit ${code})`);
    }
    if (opts.filler && running > 0) {
      const dir = mkdtempSync(join(tmpdir(), 'vit-dfkd-filler-'));
      const l = labels[labels.length - 1]!;
      process.stderr.write(`[filler] ${l} again into ${dir}, so that the runs still going are not alone; killed when they end\n`);
      // its own failures are not the table's: it is killed anyway
      fillers.push({ child: start(l, `filler ${l}`, { [FILLER_ENV]: dir }), dir });
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  for (const f of fillers) {
    if (f.child.exitCode === null && f.child.signalCode === null) {
      await new Promise<void>((resolve) => {
        f.child.once('close', () => resolve());
        f.child.kill('SIGKILL');
      });
    }
    rmSync(f.dir, { recursive: true, force: true });
  }
  if (failures.length) throw new Error(`bench runs failed: ${failures.join(', ')}; their logs are above`);
  return fillers.length;
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

// npm run bench -- list: every result in bench/results — its bench, headline figure, age, commit and
// the command that made it — so that a user sees what is measured, how old it is and how to re-run it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, printTable } from './common.js';

export interface ResultListing {
  file: string;
  date: string | null;
  age_days: number | null;
  commit: string | null;
  headline: string;
  command: string | null;
}

/** The one figure a result file is read for: its summary's first numeric entries, or its row count. */
function headline(r: { summary?: Record<string, unknown>; results?: unknown[] }): string {
  const entries = Object.entries(r.summary ?? {}).filter(([, v]) => typeof v === 'number' || typeof v === 'string').slice(0, 3);
  if (entries.length === 0) return `${r.results?.length ?? 0} rows`;
  return entries.map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toPrecision(4)) : v}`).join(', ');
}

export function listResults(dir = join(BENCH_DIR, 'results'), now = Date.now()): ResultListing[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      try {
        const r = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { date?: string; commit?: string; command?: string; summary?: Record<string, unknown>; results?: unknown[] };
        const t = r.date ? Date.parse(r.date) : Number.NaN;
        return {
          file,
          date: r.date ?? null,
          age_days: Number.isFinite(t) ? Math.round(((now - t) / 86_400_000) * 10) / 10 : null,
          commit: r.commit ? r.commit.slice(0, 10) : null,
          headline: headline(r),
          command: r.command ?? null,
        };
      } catch (e) {
        return { file, date: null, age_days: null, commit: null, headline: `unreadable: ${(e as Error).message}`, command: null };
      }
    });
}

export function benchList(): Promise<string> {
  const rows = listResults();
  printTable(rows.map((r) => ({ ...r, command: r.command ?? '(not recorded: made before results recorded their command)' })));
  return Promise.resolve(join(BENCH_DIR, 'results'));
}

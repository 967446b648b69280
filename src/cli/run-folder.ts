// Run folders are never overwritten by accident (issue 19): a command that starts a run in a folder
// that already holds something refuses, naming --resume (continue it) and --force (move it aside
// first, keeping it); --resume needs a checkpoint to resume from; --force and --resume exclude each
// other. Used by dfkd distill (both tasks) and dfkd train (both tasks) before anything is loaded.
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointPaths, previousCheckpointPath } from '../export/checkpoint.js';

/** Whether `out` holds a checkpoint (or the previous one, which a resume falls back to). */
export function hasCheckpoint(out: string): boolean {
  const last = join(out, 'checkpoints', 'last');
  return existsSync(checkpointPaths(last).weights) || existsSync(previousCheckpointPath(last));
}

/** `runs/x` → `runs/x.old-2026-12-05T21-40-00-000Z` (a name that does not exist yet). */
export function asideName(out: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  let name = `${out.replace(/[/\\]+$/, '')}.old-${stamp}`;
  for (let i = 2; existsSync(name); i++) name = `${out.replace(/[/\\]+$/, '')}.old-${stamp}-${i}`;
  return name;
}

/**
 * Makes `out` ready for a run: with `resume`, it must hold a checkpoint; without, it must be absent
 * or empty — or, with `force`, what it holds is moved aside (renamed, never deleted) and logged.
 * It does not create `out` (the run's first write does), so a run that fails to start leaves none.
 */
export function prepareRunFolder(out: string, o: { resume?: boolean; force?: boolean }, log: (line: string) => void = () => {}): void {
  if (o.resume && o.force) throw new Error('--force starts a new run and --resume continues one: give one of them');
  if (o.resume) {
    if (!existsSync(out)) throw new Error(`--resume: the run folder ${out} does not exist`);
    if (!hasCheckpoint(out)) throw new Error(`--resume: ${out} has no checkpoint to resume from (${checkpointPaths(join(out, 'checkpoints', 'last')).weights} not found); start the run without --resume`);
    return;
  }
  if (existsSync(out)) {
    const entries = readdirSync(out);
    if (entries.length > 0) {
      const what = existsSync(join(out, 'result.json')) ? 'a finished run' : hasCheckpoint(out) ? 'an unfinished run' : `${entries.length} file(s)`;
      if (!o.force) {
        throw new Error(`${out} already holds ${what}; add --resume to continue it, or --force to move it aside (to ${out}.old-<time>) and start a new run there`);
      }
      const aside = asideName(out);
      renameSync(out, aside);
      log(`--force: moved ${what} in ${out} aside to ${aside}`);
    }
  }
  // Not created here: the run's first write makes it, so a run that cannot start leaves no folder.
}

// bench faults: the crash suite of issue 19 at a larger scale than the test — each case (classification
// distillation, detection distillation in one process and with the generator process, training) is
// killed with SIGKILL inside each write of a checkpoint, inside atomic writes, and at seeded random
// moments, then resumed with --resume; a trial counts as exact when the resumed run's student (and its
// metrics rows, wall times aside) are byte-identical to the uninterrupted run's. Also: a re-run into a
// finished run folder without --resume must be refused (silent overwrites).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { faultCases, faultMoments, faultTrial, makeTinyDetrTeacher, TRAIN_MOMENTS, type FaultTrialResult } from '../src/testing/faults.js';
import { BENCH_DIR, report } from './common.js';

export interface FaultsBenchOptions {
  /** Random-moment trials per case, on top of the in-write moments. */
  randomTrials: number;
  tiny?: boolean;
}

export async function benchFaults(o: FaultsBenchOptions): Promise<string> {
  const root = join(BENCH_DIR, '..');
  const cli = resolve(root, 'dist/src/cli/main.js');
  const work = mkdtempSync(join(tmpdir(), 'dfkd-bench-faults-'));
  try {
    const detrTeacher = join(work, 'detr-teacher');
    makeTinyDetrTeacher(detrTeacher);
    const cases = faultCases({ lenetTeacher: resolve(root, 'teachers/mnist-lenet5'), detrTeacher });
    const plan: [keyof typeof cases, ReturnType<typeof faultMoments>][] = o.tiny
      ? [['classify', faultMoments(0, 0).slice(0, 2)]]
      : [
          ['classify', faultMoments(o.randomTrials, 4000, 11)],
          ['detect', faultMoments(o.randomTrials, 3000, 12)],
          ['detectGp', faultMoments(o.randomTrials, 3000, 13)],
          ['train', [...TRAIN_MOMENTS, ...faultMoments(o.randomTrials, 4000, 14).slice(4)]],
        ];
    const trials: FaultTrialResult[] = [];
    for (const [key, moments] of plan) {
      const c = cases[key];
      for (const [i, m] of moments.entries()) {
        const r = await faultTrial(cli, c, join(work, `${c.name}-ref`), join(work, `${c.name}-${i}`), m);
        process.stderr.write(`${c.name} killed at ${r.moment}: ${r.exact ? 'exact' : `NOT exact (${r.detail})`}${r.leftovers.length ? `, leftovers ${r.leftovers.join(' ')}` : ''}\n`);
        trials.push(r);
      }
    }
    // Silent overwrites: a second run into each finished reference folder without --resume.
    let overwrites = 0;
    let attempts = 0;
    for (const [key] of plan) {
      const c = cases[key];
      const ref = join(work, `${c.name}-ref`);
      const before = readFileSync(join(ref, c.identical[0]!));
      const r = spawnSync(process.execPath, [cli, ...c.args, '--out', ref], { encoding: 'utf8' });
      attempts++;
      if (r.status === 0 || !before.equals(readFileSync(join(ref, c.identical[0]!)))) overwrites++;
    }
    const rows = plan.map(([key]) => {
      const mine = trials.filter((t) => t.case === cases[key].name);
      return {
        case: cases[key].name, trials: mine.length, killed: mine.filter((t) => t.killed).length, restarted: mine.filter((t) => t.restarted).length,
        exact_resumes: mine.filter((t) => t.exact).length, leftovers: mine.reduce((a, t) => a + t.leftovers.length, 0),
      };
    });
    return report({
      name: o.tiny ? 'faults-tiny' : 'faults',
      config: { random_trials_per_case: o.randomTrials, command: `npm run bench -- faults --random-trials ${o.randomTrials}`, moments: plan.map(([k, m]) => ({ case: cases[k].name, moments: m })) },
      results: rows,
      summary: {
        trials: trials.length,
        exact_resumes: trials.filter((t) => t.exact).length,
        exact_fraction: trials.filter((t) => t.exact).length / Math.max(1, trials.length),
        leftovers: trials.reduce((a, t) => a + t.leftovers.length, 0),
        silent_overwrites: overwrites,
        overwrite_attempts: attempts,
      },
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

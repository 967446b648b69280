// The distillation benchmark's plumbing: which finished runs it reuses (the exact configuration or
// nothing), and `--jobs 2` (each method in its own 1-thread child process, the table collected after).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { finishedRun, loopConfig, meanStd } from '../bench/distill.js';
import { FILLER_ENV, benchRunsDir, runInParallel, shellQuote } from '../bench/common.js';
import { listResults } from '../bench/list.js';
import { METHODS } from '../src/distill/methods/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), 'bench-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

describe('bench distill: reusing finished runs', () => {
  const loop = loopConfig({ minutes: 20, batch: 64, seed: 0 });
  const want = { teacher: 'teachers/mnist-vit', student: 'vit-student-28', method: 'dfad', hparams: {}, loop, studentInit: 'auto' as const };
  let n = 0;
  /** A run folder as runDistillation leaves it: config.json (resolved hyper-parameters) and result.json. */
  function run(config: Record<string, unknown>, result: Record<string, unknown> | null = { method: 'dfad', test_acc: 0.9 }): string {
    const dir = join(TMP, `run${n++}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    if (result) writeFileSync(join(dir, 'result.json'), JSON.stringify(result));
    return dir;
  }
  const recorded = (): Record<string, unknown> => ({
    teacher: 'teachers/mnist-vit', student: 'vit-student-28', method: 'dfad', hparams: {}, loop: { ...loop }, studentInit: 'auto',
    student_init: 'select', method_hparams: { ...METHODS.dfad!.defaults }, dataset: 'mnist',
  });

  test('the same configuration (key order aside) is reused; so is an override equal to the default', () => {
    const c = recorded();
    const reordered = Object.fromEntries(Object.entries(c).reverse());
    assert.equal(finishedRun(run(reordered), want)?.test_acc, 0.9);
    assert.equal(finishedRun(run(c), { ...want, hparams: { studentSteps: METHODS.dfad!.defaults.studentSteps! } })?.test_acc, 0.9);
  });

  test('any difference — a hyper-parameter, the budget, the eval cadence, the seed, the student init, the teacher — is not', () => {
    const dir = run(recorded());
    assert.equal(finishedRun(dir, { ...want, hparams: { lrS: 2e-3 } }), null);
    assert.equal(finishedRun(dir, { ...want, loop: { ...loop, minutes: 30 } }), null);
    assert.equal(finishedRun(dir, { ...want, loop: loopConfig({ minutes: 4, batch: 64, seed: 0 }) }), null);
    assert.equal(finishedRun(dir, { ...want, loop: { ...loop, seed: 1 } }), null);
    assert.equal(finishedRun(dir, { ...want, studentInit: 'random' }), null);
    assert.equal(finishedRun(dir, { ...want, teacher: 'teachers/fashion-vit' }), null);
    assert.equal(finishedRun(dir, { ...want, method: 'tgan' }), null);
  });

  test('an unfinished run (no result, a result older than its config, unreadable JSON) is run again', () => {
    assert.equal(finishedRun(run(recorded(), null), want), null);
    const stale = run(recorded());
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(stale, 'result.json'), old, old);
    assert.equal(finishedRun(stale, want), null);
    const torn = run(recorded());
    writeFileSync(join(torn, 'config.json'), '{"teacher": "teach');
    assert.equal(finishedRun(torn, want), null);
    assert.equal(finishedRun(join(TMP, 'no-such-run'), want), null);
  });

  test('long budgets evaluate every 50 iterations, short ones every 25', () => {
    assert.equal(loopConfig({ minutes: 20, batch: 64, seed: 0 }).evalEvery, 50);
    assert.equal(loopConfig({ minutes: 4, batch: 64, seed: 0 }).evalEvery, 25);
    assert.equal(loopConfig({ minutes: 20, batch: 64, seed: 0, tiny: true }).iterations, 2);
  });
});

describe('bench --jobs: a filler keeps the last runs company', () => {
  // A stand-in child: `<log> --only <name>:<ms> --jobs 1` appends "start"/"done" lines to the log; as a
  // filler (FILLER_ENV set) it records its folder and never ends on its own.
  function child(): string {
    const script = join(TMP, 'child.mjs');
    writeFileSync(
      script,
      `import { appendFileSync, existsSync } from 'node:fs';
const [log] = process.argv.slice(2);
const label = process.argv[process.argv.indexOf('--only') + 1];
const dir = process.env.${FILLER_ENV};
if (dir) { appendFileSync(log, 'filler ' + label + ' ' + existsSync(dir) + ' ' + dir + '\\n'); setInterval(() => {}, 1000); }
else { appendFileSync(log, 'start ' + label + '\\n'); setTimeout(() => appendFileSync(log, 'done ' + label + '\\n'), Number(label.split(':')[1])); }
`,
    );
    return script;
  }

  test('three runs on two workers: once the queue is empty a filler runs beside the last, then is killed and its folder removed', { timeout: 30_000 }, async () => {
    const log = join(TMP, 'filler.log');
    const n = await runInParallel(['a:100', 'b:2500', 'c:100'], 2, [child(), log], { filler: true });
    assert.equal(n, 1);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    const filler = lines.find((l) => l.startsWith('filler '))!;
    const [, label, existed, dir] = filler.split(' ');
    assert.equal(label, 'c:100'); // the last label again
    assert.equal(existed, 'true');
    assert.ok(!existsSync(dir!), 'the filler folder is removed');
    // it started after the queue ran dry and before the last real run ended, and nothing real came after it
    assert.ok(lines.indexOf(filler) > lines.indexOf('done c:100') && lines.indexOf(filler) < lines.indexOf('done b:2500'), lines.join('\n'));
    assert.equal(lines[lines.length - 1], 'done b:2500');
  });

  test('without filler (or with nothing left running) no filler is started', { timeout: 30_000 }, async () => {
    const log = join(TMP, 'nofiller.log');
    assert.equal(await runInParallel(['a:100', 'b:600', 'c:100'], 2, [child(), log]), 0);
    assert.equal(await runInParallel(['d:100'], 1, [child(), log], { filler: true }), 0);
    assert.ok(!readFileSync(log, 'utf8').includes('filler'));
  });

  test('a filler child writes its runs into its own folder, never the table\'s', () => {
    const saved = process.env[FILLER_ENV];
    try {
      delete process.env[FILLER_ENV];
      assert.equal(benchRunsDir('distill-x'), join(ROOT, 'bench/runs/distill-x'));
      process.env[FILLER_ENV] = join(TMP, 'scratch');
      assert.equal(benchRunsDir('distill-x'), join(TMP, 'scratch'));
    } finally {
      if (saved === undefined) delete process.env[FILLER_ENV];
      else process.env[FILLER_ENV] = saved;
    }
  });
});

describe('bench distill --jobs 2 (tiny)', () => {
  test('two methods run as child processes; the table has both rows; a second call reuses them', { timeout: 240_000 }, () => {
    const resultFile = join(ROOT, 'bench/results/distill-mnist-tiny.json');
    rmSync(join(ROOT, 'bench/runs/distill-mnist-tiny'), { recursive: true, force: true });
    const args = [join(ROOT, 'dist/bench/run.js'), 'distill', '--tiny', '--methods', 'noise,dfad', '--jobs', '2'];
    const env = { ...process.env, VIT_DFKD_THREADS: '1' };
    const first = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env, timeout: 200_000 });
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /^\[noise\] == noise: noise/m);
    assert.match(first.stderr, /^\[dfad\] == dfad: dfad/m);
    const rows = (JSON.parse(readFileSync(resultFile, 'utf8')) as { results: { method: string; iterations: number }[] }).results;
    assert.deepEqual(rows.map((r) => r.method), ['noise', 'dfad']);
    assert.ok(rows.every((r) => r.iterations === 2));
    for (const m of ['noise', 'dfad']) assert.ok(existsSync(join(ROOT, 'bench/runs/distill-mnist-tiny', m, 'result.json')), m);

    const second = spawnSync(process.execPath, args.filter((a) => a !== '--jobs' && a !== '2'), { cwd: ROOT, encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(second.status, 0, second.stderr);
    assert.equal((second.stderr.match(/reusing the finished run/g) ?? []).length, 2, second.stderr);
  });
});

describe('bench distill --seeds (tiny)', () => {
  test('mean and sample standard deviation by hand', () => {
    assert.deepEqual(meanStd([0.5]), { mean: 0.5, std: 0 });
    const { mean, std } = meanStd([1, 2, 4]); // mean 7/3; squared deviations 16/9, 1/9, 25/9 → 42/9 / 2
    assert.ok(Math.abs(mean - 7 / 3) < 1e-12 && Math.abs(std - Math.sqrt(42 / 18)) < 1e-12);
  });

  test('two seeds of one method: one row with the mean ± std of both runs, each seed in per_seed, the command recorded', { timeout: 120_000 }, () => {
    const name = 'distill-seeds-test-tiny';
    rmSync(join(ROOT, 'bench/runs', name), { recursive: true, force: true });
    const args = [join(ROOT, 'dist/bench/run.js'), 'distill', '--tiny', '--methods', 'noise', '--seeds', '0,1', '--name', name];
    // libtorch's own default (VIT_DFKD_THREADS 2 here): the bench's --threads must still win, and be recorded
    const r = spawnSync(process.execPath, [...args, '--threads', '1'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VIT_DFKD_THREADS: '2' }, timeout: 110_000 });
    assert.equal(r.status, 0, r.stderr);
    const file = join(ROOT, 'bench/results', `${name}.json`);
    const res = JSON.parse(readFileSync(file, 'utf8')) as { command: string; commit: string; config: Record<string, unknown>; results: Record<string, unknown>[] };
    assert.equal(res.config.threads_per_run, 1);
    assert.equal(res.config.jobs, 1);
    rmSync(file, { force: true });
    rmSync(join(ROOT, 'bench/results', `${name}.html`), { force: true });
    assert.match(res.command, /bench -- distill --tiny --methods noise --seeds 0,1/);
    const [row] = res.results;
    assert.deepEqual(row!.seeds, [0, 1]);
    const per = row!.per_seed as { seed: number; test_acc: number }[];
    assert.deepEqual(per.map((p) => p.seed), [0, 1]);
    const m = meanStd(per.map((p) => p.test_acc));
    assert.equal(row!.test_acc_mean, m.mean);
    assert.equal(row!.test_acc_std, m.std);
    for (const s of [0, 1]) assert.ok(existsSync(join(ROOT, 'bench/runs', name, `noise@${s}`, 'result.json')));
    rmSync(join(ROOT, 'bench/runs', name), { recursive: true, force: true });
  });
});

describe('bench: flags', () => {
  test('the recorded command quotes what a shell would split or expand (shellQuote)', () => {
    assert.equal(shellQuote('--seeds'), '--seeds');
    assert.equal(shellQuote('0,1,2'), '0,1,2');
    assert.equal(shellQuote('{"tgan":{"warmupSteps":100}}'), `'{"tgan":{"warmupSteps":100}}'`);
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
    assert.equal(shellQuote(''), "''");
  });
  const bench = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist/bench/run.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  test('--help prints every bench with its flags and runs nothing (exit 0)', () => {
    const r = bench('distill', '--help');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /distill .*--seeds v.*--hparams v/);
    assert.match(r.stdout, /ablation .*--variants v/);
    assert.doesNotMatch(r.stderr, /==/); // no run started
  });
  test('a flag the bench does not read, a missing value, an unknown bench, bad --hparams: a message naming it, exit ≠ 0, nothing run', () => {
    for (const [args, re, code] of [
      [['distill', '--minute', '5'], /unknown flag --minute .*--minutes/, 2],
      [['distill', '--methods'], /--methods needs a value/, 2],
      [['infer', '--seeds', '0,1'], /bench infer: unknown flag --seeds/, 2],
      [['distil'], /unknown bench 'distil'/, 2],
      [['distill', '--tiny', '--hparams', '{"tgan": {"warmupSteps": "x"}}'], /--hparams: expected/, 1],
      [['ablation', '--tiny', '--variants', 'full,no-such'], /unknown ablation 'no-such'/, 1],
      [['distill', '--tiny', '--student-ema', '1'], /--student-ema: expected 0 \(off\) or a decay in \(0, 1\), e\.g\. 0\.99; got '1'/, 1],
    ] as const) {
      const r = bench(...args);
      assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /^\s+at /m); // a message, not a stack trace
    }
  });
});

describe('bench ablation --seeds (tiny)', () => {
  test('two seeds of one variant: one row with the mean ± std, per_seed, variant@seed run folders', { timeout: 150_000 }, () => {
    const name = 'ablation-seeds-test-tiny';
    rmSync(join(ROOT, 'bench/runs', name), { recursive: true, force: true });
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/bench/run.js'), 'ablation', '--tiny', '--variants', 'with-warmup', '--seeds', '0,1', '--name', name], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VIT_DFKD_THREADS: '1' }, timeout: 140_000 });
    assert.equal(r.status, 0, r.stderr);
    const file = join(ROOT, 'bench/results', `${name}.json`);
    const res = JSON.parse(readFileSync(file, 'utf8')) as { config: Record<string, unknown>; results: Record<string, unknown>[] };
    rmSync(file, { force: true });
    rmSync(join(ROOT, 'bench/results', `${name}.html`), { force: true });
    assert.deepEqual(res.config.seeds, [0, 1]);
    const [row] = res.results;
    assert.equal(row!.variant, 'with-warmup');
    const per = row!.per_seed as { seed: number; retention: number }[];
    assert.deepEqual(per.map((p) => p.seed), [0, 1]);
    assert.equal(row!.retention_mean, meanStd(per.map((p) => p.retention)).mean);
    for (const s of [0, 1]) {
      const cfg = JSON.parse(readFileSync(join(ROOT, 'bench/runs', name, `with-warmup@${s}`, 'config.json'), 'utf8')) as { method_hparams: Record<string, unknown>; loop: { seed: number } };
      assert.equal(cfg.method_hparams.warmupSteps, 100);
      assert.equal(cfg.loop.seed, s);
    }
    rmSync(join(ROOT, 'bench/runs', name), { recursive: true, force: true });
  });
});

describe('bench detect --jobs 2 (tiny)', () => {
  test('scratch and a method run as child processes on the parent\'s tiny teacher; the table has teacher, scratch and the method', { timeout: 300_000 }, () => {
    const args = [join(ROOT, 'dist/bench/run.js'), 'detect', '--tiny', '--methods', 'dfad', '--jobs', '2'];
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VIT_DFKD_THREADS: '1' }, timeout: 280_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^\[scratch\] == scratch:/m);
    assert.match(r.stderr, /^\[dfad\] == dfad/m);
    assert.equal((r.stderr.match(/reusing the finished run/g) ?? []).length, 2, 'the parent collects both child runs');
    const rows = (JSON.parse(readFileSync(join(ROOT, 'bench/results/detect-tiny.json'), 'utf8')) as { results: { model: string }[] }).results;
    assert.deepEqual(rows.map((x) => x.model), ['teacher', 'scratch', 'dfad']);
  });
});

describe('bench feed (tiny)', () => {
  test('one process and --generator-process rows, the same student from both', { timeout: 120_000 }, () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/bench/run.js'), 'feed', '--tiny'], { cwd: ROOT, encoding: 'utf8', timeout: 110_000 });
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(readFileSync(join(ROOT, 'bench/results/feed-tiny.json'), 'utf8')) as { results: { mode: string; s_per_iteration: number }[]; summary: { student_max_abs_diff: number; speedup: number } };
    assert.deepEqual(res.results.map((x) => x.mode), ['one process', '--generator-process']);
    assert.ok(res.results.every((x) => x.s_per_iteration > 0) && res.summary.speedup > 0);
    assert.equal(res.summary.student_max_abs_diff, 0);
  });
});

describe('bench ddp (tiny)', () => {
  test('1 × 1 thread, 1 × 2 threads and 2 ranks rows, a speed-up in the summary', { timeout: 180_000 }, () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/bench/run.js'), 'ddp', '--tiny'], { cwd: ROOT, encoding: 'utf8', timeout: 170_000 });
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(readFileSync(join(ROOT, 'bench/results/ddp-tiny.json'), 'utf8')) as { results: { mode: string; iterations_per_s: number }[]; summary: { speedup_2ranks: number } };
    assert.deepEqual(res.results.map((x) => x.mode), ['1 process × 1 thread', '1 process × 2 threads', '2 ranks × 1 thread', 'ceiling: 2 independent 1-thread runs side by side, batch / 2 each']);
    assert.ok(res.results.every((x) => x.iterations_per_s > 0) && res.summary.speedup_2ranks > 0);
  });
});

describe('bench list', () => {
  test('each result file: its age, short commit, headline from the summary and command; an unreadable file says so', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfkd-list-'));
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ date: '2026-12-01T00:00:00.000Z', commit: '0123456789abcdef', command: 'npm run bench -- a', summary: { best_retention: 0.91234, best_method: 'cmi' }, results: [] }));
    writeFileSync(join(dir, 'b.json'), '{"date": "2026');
    writeFileSync(join(dir, 'notes.txt'), 'not a result');
    const [a, b] = listResults(dir, Date.parse('2026-12-03T12:00:00.000Z'));
    assert.deepEqual(a, { file: 'a.json', date: '2026-12-01T00:00:00.000Z', age_days: 2.5, commit: '0123456789', headline: 'best_retention 0.9123, best_method cmi', command: 'npm run bench -- a' });
    assert.equal(b!.file, 'b.json');
    assert.match(b!.headline, /^unreadable: /);
    rmSync(dir, { recursive: true, force: true });
  });
});

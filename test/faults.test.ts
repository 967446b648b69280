// Runs that never lose or mix up work (issue 19): kill -9 at chosen moments — inside each write of a
// checkpoint, inside atomic writes, at seeded random times — then `--resume` as a user would; every
// resumed run ends byte-identical to the uninterrupted one with no temporary file left (classification,
// detection with and without the generator process, training). Plus the checkpoint unit itself (a
// damaged checkpoint falls back to the previous one), refused overwrites, refused mismatched resumes,
// and the budget flags.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as T from '../src/index.js';
import { Linear } from '../src/nn/layers.js';
import { checkpointPaths, previousCheckpointPath, readCheckpointConfig, resolveCheckpoint, saveCheckpoint, loadCheckpointInto, CorruptCheckpointError, removeStaleTemps } from '../src/export/checkpoint.js';
import { faultCases, faultMoments, faultTrial, leftovers, makeTinyDetrTeacher, TRAIN_MOMENTS, type FaultCase, type FaultTrialResult } from '../src/testing/faults.js';

T.setNumThreads(1);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dfkd-faults-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const cli = path.resolve('dist/src/cli/main.js');
const dfkd = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe('one atomic checkpoint', () => {
  test('the config rides inside the weights file; a damaged checkpoint falls back to the previous good one', () => {
    const dir = path.join(tmp, 'unit');
    const base = path.join(dir, 'last');
    const m = new Linear(3, 2);
    saveCheckpoint(base, m, { iteration: 1 });
    saveCheckpoint(base, m, { iteration: 2 });
    // The .json mirror lagging behind (a kill between the two renames) no longer matters.
    fs.writeFileSync(checkpointPaths(base).config, JSON.stringify({ iteration: 1 }));
    assert.deepEqual(readCheckpointConfig(base), { iteration: 2 });
    assert.equal(resolveCheckpoint(base), 'ok');
    assert.deepEqual(readCheckpointConfig(previousCheckpointPath(base)), { iteration: 1 });
    // Flip one byte of the tensor data: the checksum catches it, the previous checkpoint is promoted.
    const bytes = fs.readFileSync(checkpointPaths(base).weights);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(checkpointPaths(base).weights, bytes);
    assert.throws(() => loadCheckpointInto(base, m), CorruptCheckpointError);
    const logs: string[] = [];
    assert.equal(resolveCheckpoint(base, (l) => logs.push(l)), 'previous');
    assert.match(logs[0]!, /do not match its checksum; using the previous good checkpoint/);
    assert.deepEqual(readCheckpointConfig(base), { iteration: 1 });
    assert.deepEqual(JSON.parse(fs.readFileSync(checkpointPaths(base).config, 'utf8')), { iteration: 1 });
    loadCheckpointInto(base, m);
    // Truncated, with no usable previous one: a clear error.
    fs.writeFileSync(checkpointPaths(base).weights, bytes.subarray(0, 20));
    fs.rmSync(previousCheckpointPath(base));
    assert.throws(() => resolveCheckpoint(base), /unreadable.*no previous checkpoint to fall back to/);
    assert.equal(resolveCheckpoint(path.join(dir, 'nothing')), 'none');
    m.dispose();
  });

  test('stale temporaries of interrupted writes are removed, a live process\'s write in flight and other files kept', () => {
    const dir = path.join(tmp, 'stale');
    fs.mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
    // pids of processes that have exited (the writers were killed)
    const dead = [spawnSync('true').pid!, spawnSync('true').pid!];
    const stale = [path.join(dir, 'checkpoints', `.last.json.${dead[0]}.0123456789ab.tmp`), path.join(dir, `.metrics.jsonl.${dead[1]}.abcdefabcdef.tmp`), path.join(dir, 'checkpoints', 'last.safetensors.restore.tmp')];
    for (const f of stale) fs.writeFileSync(f, 'x');
    // another rank (here: the test runner, alive) writing its config.json while this one tidies
    const inFlight = path.join(dir, `.config.json.${process.ppid}.00112233aabb.tmp`);
    fs.writeFileSync(inFlight, 'x');
    fs.writeFileSync(path.join(dir, 'notes.tmp'), 'mine');
    assert.deepEqual(removeStaleTemps(dir).sort(), stale.sort());
    assert.ok(fs.existsSync(path.join(dir, 'notes.tmp')));
    assert.ok(fs.existsSync(inFlight));
  });
});

const LENET = path.resolve('teachers/mnist-lenet5');
const classify = faultCases({ lenetTeacher: LENET, detrTeacher: '' }).classify.args;

describe('refused and explicit', () => {
  const out = path.join(tmp, 'refuse');
  test('an existing run is never overwritten; --force moves it aside', () => {
    assert.match(dfkd(...classify, '--minutes', '1', '--out', out).stderr, /give one budget: --iterations or --minutes, not both/);
    const short = classify.map((a, i) => (classify[i - 1] === '--iterations' ? '5' : a));
    assert.equal(dfkd(...short, '--out', out).status, 0);
    const before = fs.readFileSync(path.join(out, 'model.safetensors'));
    const again = dfkd(...short, '--out', out);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already holds a finished run; add --resume to continue it, or --force to move it aside/);
    assert.ok(before.equals(fs.readFileSync(path.join(out, 'model.safetensors'))), 'the finished run is untouched');
    const forced = dfkd(...short, '--out', out, '--force');
    assert.equal(forced.status, 0, forced.stderr);
    const aside = fs.readdirSync(tmp).filter((n) => n.startsWith('refuse.old-'));
    assert.equal(aside.length, 1);
    assert.ok(before.equals(fs.readFileSync(path.join(tmp, aside[0]!, 'model.safetensors'))), 'the old run was moved, not deleted');
  });

  test('--resume refuses other settings (listing them), an empty folder, and extends the budget only on purpose', () => {
    const r = dfkd('distill', '--out', out, '--resume', '--batch', '64', '--method', 'dfad', '--iterations', '9');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--method: the run has "dafl", given "dfad"/);
    assert.match(r.stderr, /--batch: the run has 32, given 64/);
    assert.match(r.stderr, /--iterations: the run has 5, given 9/);
    assert.match(r.stderr, /--extend-iterations/);
    const hp = dfkd('distill', '--out', out, '--resume', '--lr-g', '0.5');
    assert.equal(hp.status, 1);
    assert.match(hp.stderr, /--lr-g: the run has 0\.05, given "0\.5"/);
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    assert.match(dfkd('distill', '--out', empty, '--resume').stderr, /has no checkpoint to resume from/);
    assert.match(dfkd('distill', '--out', out, '--resume', '--extend-minutes', '1').stderr, /has an iterations budget \(5\); use --extend-iterations/);
    assert.match(dfkd(...classify, '--out', path.join(tmp, 'x'), '--extend-iterations', '3').stderr, /add --resume/);
    // A resume that fails after recording its extension (here: 2 ranks for a 1-process run) is given
    // again as it was: the extension from the same checkpoint applies once.
    const ranks = dfkd('distill', '--out', out, '--resume', '--extend-iterations', '5', '--nproc', '2', '--threads', '2', '--no-report');
    assert.notEqual(ranks.status, 0);
    assert.match(ranks.stderr, /was run as 1 rank and this is 2: resume it with one process/);
    // The run's own settings (no flags) continue it; 5 more iterations on purpose reach 10.
    const ext = dfkd('distill', '--out', out, '--resume', '--extend-iterations', '5', '--threads', '1', '--no-report');
    assert.equal(ext.status, 0, ext.stderr);
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8')).iterations, 10);
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).loop.iterations, 10);
  });
});

/** Runs the trials of a case and checks every one: exact, nothing left over. */
async function suite(c: FaultCase, moments: ReturnType<typeof faultMoments>): Promise<FaultTrialResult[]> {
  const results: FaultTrialResult[] = [];
  for (const [i, m] of moments.entries()) {
    const r = await faultTrial(cli, c, path.join(tmp, `${c.name}-ref`), path.join(tmp, `${c.name}-${i}`), m);
    results.push(r);
    assert.ok(r.exact, `${c.name} killed at ${r.moment}: ${r.detail}`);
    assert.deepEqual(r.leftovers, [], `${c.name} killed at ${r.moment}: leftovers`);
  }
  // Not vacuous: most trials were really killed (a random delay may outlast a short run).
  assert.ok(results.filter((r) => r.killed).length >= moments.length - 2, JSON.stringify(results));
  return results;
}

describe('kill -9, then --resume: byte-identical to the uninterrupted run', () => {
  const teacherDir = path.join(tmp, 'detr-teacher');
  const cases = faultCases({ lenetTeacher: LENET, detrTeacher: teacherDir });
  test('classification (dafl, LeNet-5 → LeNet-5-Half): 7 trials', async () => {
    await suite(cases.classify, faultMoments(3, 4000));
  });
  test('detection (tgan), one process: 5 trials', async () => {
    makeTinyDetrTeacher(teacherDir);
    await suite(cases.detect, faultMoments(1, 3000, 2));
  });
  test('detection (tgan) with --generator-process: 5 trials', async () => {
    makeTinyDetrTeacher(teacherDir);
    await suite(cases.detectGp, faultMoments(1, 3000, 3));
  });
  test('training (dfkd train, LeNet-5 on MNIST): 5 trials', async () => {
    await suite(cases.train, TRAIN_MOMENTS);
  });

  test('leftovers() sees temporaries and feed folders', () => {
    const d = path.join(tmp, 'lo');
    fs.mkdirSync(path.join(d, 'feed', 'x'), { recursive: true });
    fs.writeFileSync(path.join(d, '.a.json.12.aaaaaaaaaaaa.tmp'), '');
    assert.equal(leftovers(d).length, 2);
  });
});

// The collapse guard's figures (distill/collapse.ts) against hand-worked values, and its verdict over metrics rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { collapseSummary, withinClassDiversity } from '../src/distill/collapse.js';

test('within-class diversity: the mean of 1 − cos over same-class pairs, hand-worked', () => {
  // class 0: (1,0) and (0,1) → cos 0 → distance 1; (1,0) and (1,1) → cos 1/√2 → 1 − 0.7071; (0,1)/(1,1) the same.
  // class 1: one sample, no pair. Mean over the 3 pairs: (1 + 2·(1 − 1/√2)) / 3.
  const f = new Float32Array([1, 0, 0, 1, 1, 1, 5, 5]);
  const d = withinClassDiversity(f, 2, [0, 0, 0, 1]);
  assert.ok(Math.abs(d - (1 + 2 * (1 - Math.SQRT1_2)) / 3) < 1e-6, String(d));
  assert.ok(Number.isNaN(withinClassDiversity(f, 2, [0, 1, 2, 3])), 'no pair: NaN');
  assert.ok(Math.abs(withinClassDiversity(new Float32Array([2, 0, 3, 0]), 2, [4, 4])) < 1e-7, 'copies: 0');
});

test('collapseSummary: rows where at least half the batches collapsed, the first one, the fewest classes', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dfkd-collapse-')), 'metrics.jsonl');
  const rows = [
    { iteration: 10, 'synth/classes': 9.5, 'synth/collapsed': 0, 'synth/diversity': 0.4 },
    { iteration: 20, 'synth/classes': 2.2, 'synth/collapsed': 0.6, 'synth/diversity': 0.1 },
    { iteration: 30, 'synth/classes': 1, 'synth/collapsed': 1, 'synth/diversity': 0 },
  ];
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  assert.deepEqual(collapseSummary(file), { collapsed_rows: 2, rows: 3, first_collapsed_iteration: 20, min_classes: 1, final_diversity: 0 });
  assert.deepEqual(collapseSummary(path.join(path.dirname(file), 'none.jsonl')), { collapsed_rows: 0, rows: 0, first_collapsed_iteration: null, min_classes: null, final_diversity: null });
});

test('CLI: dafl at the published lr_G 0.2 collapses on the shipped LeNet pair and says so; the default lr_G does not (batch 128, 60 iterations)', async () => {
  const { spawn } = await import('node:child_process');
  const cli = path.resolve('dist/src/cli/main.js');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dfkd-collapse-cli-'));
  const run = (out: string, extra: string[]): Promise<{ code: number | null; stdout: string }> =>
    new Promise((resolve) => {
      const args = ['distill', '--teacher', path.resolve('teachers/mnist-lenet5'), '--student', 'lenet5-half-28', '--method', 'dafl', '--iterations', '60', '--batch', '128', '--eval-every', '20', '--threads', '1', '--no-report', '--out', path.join(root, out), ...extra];
      const c = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.on('exit', (code) => resolve({ code, stdout }));
    });
  // The two runs side by side (one thread each).
  const [bad, good] = await Promise.all([run('published', ['--lr-g', '0.2']), run('default', [])]);
  assert.equal(bad.code, 0);
  assert.match(bad.stdout, /warning: the synthetic data collapsed/);
  const rb = JSON.parse(fs.readFileSync(path.join(root, 'published', 'result.json'), 'utf8'));
  assert.ok(rb.collapse.collapsed_rows >= 2 && rb.collapse.min_classes <= 2, JSON.stringify(rb.collapse));
  assert.ok(rb.test_acc < 0.2, `collapsed run at ${rb.test_acc}`);
  assert.equal(good.code, 0);
  assert.doesNotMatch(good.stdout, /collapsed/);
  const rg = JSON.parse(fs.readFileSync(path.join(root, 'default', 'result.json'), 'utf8'));
  assert.equal(rg.collapse.collapsed_rows, 0);
  assert.ok(rg.test_acc > 0.3, `default dafl at ${rg.test_acc}`);
  fs.rmSync(root, { recursive: true, force: true });
});

// Data-parallel distillation on c10d (issue 16): 2 ranks at batch B/2 take the same steps as one
// process at batch B (the driver, its clip and its optimiser hooks); every method keeps the ranks'
// students identical; a rank that dies stops the others with a message that says to --resume, and
// --resume after a rank was killed mid-checkpoint continues exactly as the uninterrupted run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { readSafetensorsFile } from '../src/export/safetensors.js';
import { METHODS } from '../src/distill/methods/index.js';
import { DETECT_METHODS } from '../src/detect/distill/methods.js';
import { makeTinyDetrTeacher } from '../src/testing/faults.js';
import { loadClassifier } from '../src/models/load.js';
import { loadDataset } from '../src/data/index.js';
import { evaluateClassifier } from '../src/train/classifier.js';
import { placeRank } from '../src/cli/launch.js';
import { availableBackends } from '../src/dist/process-group.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dfkd-ddp-'));
const dist = path.resolve('dist/src');
const cli = path.resolve('dist/src/cli/main.js');
const lenet = ['--teacher', 'teachers/mnist-lenet5', '--student', 'lenet5-half-28'];

// One rank (or the single process) of a toy regression through the distillation driver: sample i of
// iteration t depends on the global index t·B + i alone, and rank r takes samples [rB/W, (r+1)B/W),
// so the mean of the ranks' gradients is the gradient of the one process's global batch.
const worker = path.join(tmp, 'driver-worker.mjs');
fs.writeFileSync(
  worker,
  `
import { initDataParallel, shutdownDataParallel } from '${dist}/dist/data-parallel.js';
import { runBudgetedLoop } from '${dist}/distill/driver.js';
import { Linear, Tanh } from '${dist}/nn/layers.js';
import { Sequential } from '${dist}/nn/module.js';
import { Adam } from '${dist}/nn/optim.js';
import { clipGradNorm } from '${dist}/nn/clip.js';
import { manualSeed, setNumThreads, tensor } from '${dist}/tensor/tensor.js';
const [world, rank, store, out, B, steps] = process.argv.slice(2).map((v, i) => (i === 2 || i === 3 ? v : Number(v)));
setNumThreads(1);
if (world > 1) initDataParallel({ rank, worldSize: world, store: { kind: 'file', path: store }, timeoutMs: 30000 });
manualSeed(0);
const model = new Sequential(new Linear(6, 16), new Tanh(), new Linear(16, 3));
const opt = new Adam(model.parameters(), { lr: 0.05 });
const shard = B / world;
const batchOf = (it) => {
  const xs = [], ys = [];
  for (let i = rank * shard; i < (rank + 1) * shard; i++) {
    const g = it * B + i;
    for (let j = 0; j < 6; j++) xs.push(Math.sin(0.37 * g + 1.3 * j));
    for (let k = 0; k < 3; k++) ys.push(Math.cos(0.11 * g * (k + 1)));
  }
  return { x: tensor(xs, { shape: [shard, 6] }), y: tensor(ys, { shape: [shard, 3] }), logs: {} };
};
const method = { name: 'toy', stateDict: () => ({ tensors: {}, meta: {} }), loadStateDict() {} };
runBudgetedLoop(
  { iterations: steps, minutes: 1e9, batchSize: B, seed: 0, evalEvery: 1e9, sampleEvery: 1e9, checkpointEvery: steps, cosine: false, clipNorm: 0.5 },
  out,
  { model, opt, method },
  {
    baseLr: 0.05,
    synthesize: batchOf,
    studentSteps: 1,
    studentStep: (b) => {
      const loss = model.forward(b.x).sub(b.y).square().mean();
      opt.zeroGrad();
      loss.backward();
      clipGradNorm(model.parameters(), 0.5); // below the gradient's norm: the clip reads the averaged gradients
      opt.step();
      return { loss: loss.item() };
    },
    evaluate: () => ({}),
  },
);
console.log(JSON.stringify(Object.fromEntries(model.namedParameters().map(([k, t]) => [k, Array.from(t.toArray())]))));
shutdownDataParallel();
process.exit(0);
`,
);

function runNode(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => c.kill('SIGKILL'), 240_000); // a hang fails the test, it does not stall it
    c.on('exit', (code, signal) => {
      clearTimeout(kill);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

type Weights = Record<string, number[]>;
async function toyRun(world: number, B: number, steps: number): Promise<Weights[]> {
  const out = fs.mkdtempSync(path.join(tmp, `toy-${world}-`));
  const store = path.join(out, 'store');
  const runs = await Promise.all(Array.from({ length: world }, (_, r) => runNode([worker, String(world), String(r), store, out, String(B), String(steps)])));
  return runs.map((r, i) => {
    assert.equal(r.code, 0, `rank ${i}: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Weights;
  });
}

function maxDiff(a: Weights, b: Weights): number {
  let m = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k]!.length; i++) m = Math.max(m, Math.abs(a[k]![i]! - b[k]![i]!));
  return m;
}

/** The student's tensors of a checkpoint (not the method's; the optimiser's state when asked). */
function studentOf(file: string, withOptimizer = false): Record<string, Uint8Array> {
  const t = readSafetensorsFile(file).tensors;
  return Object.fromEntries(
    Object.entries(t)
      .filter(([k]) => !k.startsWith('method.') && (withOptimizer || !k.startsWith('optim.')))
      .map(([k, v]) => [k, v.data]),
  );
}

/** Bit-identical tensors (their bytes). */
function assertSameTensors(a: Record<string, Uint8Array>, b: Record<string, Uint8Array>, what: string): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), what);
  for (const k of Object.keys(a)) assert.ok(Buffer.from(a[k]!).equals(Buffer.from(b[k]!)), `${what}: ${k} differs`);
}

describe('data-parallel distillation (2 ranks, Gloo)', () => {
  test('2 ranks at batch 4 each take the same steps as one process at batch 8 (averaged gradients, the clip and Adam)', async () => {
    const [single] = await toyRun(1, 8, 6);
    const [r0, r1] = await toyRun(2, 8, 6);
    assert.equal(maxDiff(r0!, r1!), 0, 'the ranks hold the same weights');
    const d = maxDiff(single!, r0!);
    assert.ok(d < 2e-6, `2 ranks vs 1 process: max |Δw| = ${d}`);
    // The check can fail: one rank's half batch alone gives other weights.
    const [half] = await toyRun(1, 4, 6);
    assert.ok(maxDiff(half!, r0!) > 1e-3, 'a half batch alone differs from the 2-rank run');
  });

  for (const method of Object.keys(METHODS)) {
    test(`${method}: --nproc 2 keeps the ranks' students and optimiser states identical; rank 0 writes the result`, async () => {
      const out = path.join(tmp, `m-${method}`);
      // tgan and deepinv's patch prior need a ViT teacher.
      const pair = method === 'tgan' || method === 'deepinv' ? ['--teacher', 'teachers/mnist-vit', '--student', 'vit-student-28'] : lenet;
      const r = await runNode([cli, 'distill', ...pair, '--method', method, '--iterations', '3', '--batch', '16', '--checkpoint-every', '3', '--nproc', '2', '--threads', '2', '--out', out, '--no-report']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /2 ranks on this machine, 1 thread each/);
      const a = studentOf(path.join(out, 'checkpoints', 'last.safetensors'), true);
      const b = studentOf(path.join(out, 'checkpoints', 'rank-1', 'last.safetensors'), true);
      assertSameTensors(a, b, method);
      assert.ok(Object.keys(a).some((k) => k.startsWith('optim.')), 'the optimiser state is compared too');
      const result = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8')) as { iterations: number };
      assert.equal(result.iterations, 3);
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).world_size, 2);
      const rows = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
      assert.equal(rows.length, 1, 'one metrics row (rank 0 alone writes)');
      if (method === 'noise') {
        // The ranks evaluated half the validation split each: the summed figure is the whole split's.
        const { model, card } = loadClassifier(out);
        assert.equal((JSON.parse(rows[0]!) as { val_acc: number }).val_acc, evaluateClassifier(model, loadDataset(card.dataset, 'val')).accuracy);
      }
    });
  }

  for (const method of Object.keys(DETECT_METHODS)) {
    test(`detection ${method}: --nproc 2 keeps the ranks' DETR students and optimiser states identical`, async () => {
      const teacher = path.join(tmp, 'detr-teacher');
      if (!fs.existsSync(teacher)) makeTinyDetrTeacher(teacher);
      const out = path.join(tmp, `d-${method}`);
      const hp = method === 'deepinv' ? ['--steps-per-batch', '2', '--inversion-steps', '1'] : [];
      const r = await runNode([cli, 'distill', '--task', 'detect', '--teacher', teacher, '--student', 'detr-student-64', '--method', method, '--iterations', '2', '--batch', '4', '--checkpoint-every', '2', '--threshold', '0.05', ...hp, '--nproc', '2', '--threads', '2', '--out', out, '--no-report']);
      assert.equal(r.code, 0, r.stderr);
      const a = studentOf(path.join(out, 'checkpoints', 'last.safetensors'), true);
      assertSameTensors(a, studentOf(path.join(out, 'checkpoints', 'rank-1', 'last.safetensors'), true), method);
      assert.ok(Object.keys(a).some((k) => k.startsWith('optim.')));
      assert.equal((JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8')) as { iterations: number }).iterations, 2);
    });
  }

  test('dfkd train --nproc 2 (batch 64 per rank) takes the steps of one process at batch 128; both ranks hold the same model', async () => {
    const train = (out: string, ...more: string[]): string[] => [cli, 'train', '--dataset', 'mnist', '--model', 'lenet5-28', '--epochs', '1', '--translate', '0', '--out', path.join(tmp, out), ...more];
    const [two, one, half] = await Promise.all([
      runNode(train('train-2', '--batch', '128', '--nproc', '2', '--threads', '2')),
      runNode(train('train-1', '--batch', '128', '--threads', '1')),
      runNode(train('train-half', '--batch', '64', '--threads', '1')),
    ]);
    for (const r of [two, one, half]) assert.equal(r.code, 0, r.stderr);
    const weights = (run: string, f = 'last.safetensors'): Record<string, Float32Array> => {
      const t = readSafetensorsFile(path.join(tmp, run, 'checkpoints', f)).tensors;
      return Object.fromEntries(Object.entries(t).filter(([k, v]) => !k.startsWith('optim.') && v.dtype === 'F32').map(([k, v]) => [k, new Float32Array(v.data.buffer.slice(v.data.byteOffset, v.data.byteOffset + v.data.byteLength))]));
    };
    const diff = (a: Record<string, Float32Array>, b: Record<string, Float32Array>): number => {
      let m = 0;
      for (const k of Object.keys(a)) for (let i = 0; i < a[k]!.length; i++) m = Math.max(m, Math.abs(a[k]![i]! - b[k]![i]!));
      return m;
    };
    const d = diff(weights('train-2'), weights('train-1'));
    assert.ok(d < 1e-4, `2 ranks vs 1 process after an epoch: max |Δw| = ${d}`);
    assert.ok(diff(weights('train-half'), weights('train-2')) > 1e-3, 'a half batch alone trains other weights');
    assertSameTensors(studentOf(path.join(tmp, 'train-2', 'checkpoints', 'last.safetensors'), true), studentOf(path.join(tmp, 'train-2', 'checkpoints', 'rank-1', 'last.safetensors'), true), 'train ranks');
    assert.equal(JSON.parse(fs.readFileSync(path.join(tmp, 'train-2', 'config.json'), 'utf8')).world_size, 2);
    assert.ok(fs.existsSync(path.join(tmp, 'train-2', 'model.safetensors')));
  });

  test('a CUDA rank takes the GPU of its LOCAL_RANK on NCCL, or is refused where the LibTorch has no NCCL; a CPU rank stays on Gloo', async () => {
    const role = () => ({ dist: { rank: 1, worldSize: 2, store: { kind: 'file' as const, path: '/nonexistent' } }, worker: true, launcher: false });
    const cpu = role();
    assert.equal(await placeRank(cpu, 'cpu', { LOCAL_RANK: '1' }), 'cpu');
    assert.equal((cpu.dist as { backend?: string }).backend, undefined);
    if (availableBackends().includes('nccl')) {
      const gpu = role();
      assert.equal(await placeRank(gpu, 'cuda', { LOCAL_RANK: '1' }), 'cuda:1');
      assert.equal((gpu.dist as { backend?: string }).backend, 'nccl');
    } else {
      await assert.rejects(placeRank(role(), 'cuda', { LOCAL_RANK: '1' }), /needs NCCL, which this LibTorch build does not have/);
    }
  });

  test('a global batch that does not divide into the ranks, and a resume with another number of ranks, are refused', async () => {
    const r = await runNode([cli, 'distill', ...lenet, '--method', 'noise', '--iterations', '2', '--batch', '15', '--nproc', '2', '--threads', '2', '--out', path.join(tmp, 'odd'), '--no-report']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--batch 15 is the global batch: it must divide into 2 ranks/);
    const resume = await runNode([cli, 'distill', '--out', path.join(tmp, 'm-noise'), '--resume', '--extend-iterations', '1', '--threads', '1', '--no-report']);
    assert.equal(resume.code, 1);
    assert.match(resume.stderr, /was run as 2 ranks and this is 1: resume it with 2 ranks/);
  });

  test('ranks started by hand (--rank / --world-size over a TCPStore): a killed rank stops the other with a message to --resume', async () => {
    const out = path.join(tmp, 'by-hand');
    const port = String(29_500 + (process.pid % 400));
    const marker = path.join(tmp, 'by-hand.marker');
    const args = (rank: number): string[] => [cli, 'distill', ...lenet, '--method', 'dafl', '--iterations', '200', '--batch', '16', '--checkpoint-every', '5', '--threads', '1', '--out', out, '--no-report', '--rank', String(rank), '--world-size', '2', '--master-addr', '127.0.0.1', '--master-port', port, '--dist-timeout', '60'];
    const r0 = runNode(args(0));
    // Rank 1 stops (alive, silent) in its 2nd checkpoint write; the test kills it there.
    const r1 = runNode(args(1), { DFKD_FAULT_PAUSE: 'checkpoint-weights-written@2', DFKD_FAULT_MARKER: marker, DFKD_FAULT_RANK: '1', RANK: '1' });
    const pid = await waitForMarker(marker);
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const [a, b] = await Promise.all([r0, r1]);
    assert.equal(b.signal, 'SIGKILL');
    assert.equal(a.code, 1, a.stderr);
    assert.match(a.stderr, /rank 0 of 2: the .* with the other ranks failed .*Start every rank again with --resume/);
    assert.ok(Date.now() - t0 < 50_000, `rank 0 stopped ${Date.now() - t0} ms after the kill (the timeout is 60 s; a closed connection is seen at once)`);
    assert.ok(fs.existsSync(path.join(out, '.dfkd-rank0')), 'rank 1 used the folder rank 0 prepared');
  });

  test('--nproc 2: rank 1 killed while writing a checkpoint; the launcher stops rank 0, and --resume continues exactly', async () => {
    const run = (out: string): string[] => [cli, 'distill', ...lenet, '--method', 'dafl', '--iterations', '12', '--batch', '16', '--checkpoint-every', '4', '--nproc', '2', '--threads', '2', '--out', out, '--no-report'];
    const ref = path.join(tmp, 'ref');
    const whole = await runNode(run(ref));
    assert.equal(whole.code, 0, whole.stderr);

    const out = path.join(tmp, 'killed');
    const marker = path.join(tmp, 'killed.marker');
    // Rank 1 is killed between keeping its iteration-4 checkpoint as last.prev and writing iteration 8's:
    // rank 0 has iteration 8 (it was ahead), rank 1 iteration 4 only.
    const launcher = runNode(run(out), { DFKD_FAULT_PAUSE: 'checkpoint-before-weights@2', DFKD_FAULT_MARKER: marker, DFKD_FAULT_RANK: '1' });
    const pid = await waitForMarker(marker);
    await waitFor(() => fs.existsSync(path.join(out, 'checkpoints', 'last.json')) && JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'last.json'), 'utf8')).state.iteration === 8);
    process.kill(pid, 'SIGKILL');
    const killed = await launcher;
    assert.notEqual(killed.code, 0);
    assert.match(killed.stderr, /rank 1 of 2 was killed \(SIGKILL\); the other ranks were stopped\. Continue the run with --resume/);
    assert.ok(!fs.existsSync(path.join(out, 'result.json')));

    const resumed = await runNode([cli, 'distill', '--out', out, '--resume', '--nproc', '2', '--threads', '2', '--no-report']);
    assert.equal(resumed.code, 0, resumed.stderr);
    // Rank 0 had finished its iteration-8 checkpoint, rank 1 had not: both go back to iteration 4.
    assert.match(resumed.stdout, /rank 0 was one checkpoint ahead of another rank: resuming from its previous checkpoint \(iteration 4\)/);
    assert.match(resumed.stdout, /resumed from .*last\.prev at iteration 4 .*2 ranks/);
    assertSameTensors(studentOf(path.join(out, 'model.safetensors')), studentOf(path.join(ref, 'model.safetensors')), 'resumed vs uninterrupted');
    const rows = (f: string): number[] => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { iteration: number }).iteration);
    assert.deepEqual(rows(path.join(out, 'metrics.jsonl')), rows(path.join(ref, 'metrics.jsonl')));
  });
});

async function waitFor(ok: () => boolean, seconds = 120): Promise<void> {
  for (let i = 0; i < seconds * 20; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`waited ${seconds} s in vain`);
}

async function waitForMarker(marker: string): Promise<number> {
  for (let i = 0; i < 2400; i++) {
    if (fs.existsSync(marker)) {
      try {
        return (JSON.parse(fs.readFileSync(marker, 'utf8')) as { pid: number }).pid;
      } catch {
        // half-written: read again
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${marker} did not appear in 120 s`);
}

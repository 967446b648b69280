// `cmi` (Contrastive Model Inversion): the InfoNCE term against a hand-worked value and finite
// differences, the random resized crop (the local view), the feature memory bank (finished batches in,
// in order, oldest overwritten), the method end to end through distillLoop with a ViT, a LeNet-5 (no
// BatchNorm) and a tiny CIFAR-ResNet-style (BatchNorm) teacher, the BN prior falling on a fixed batch,
// an exact resume, and bad hyper-parameters.
//
// Cost: random-weight tiny teachers (ViT width 24 depth 1 patch 7; LeNet-5; ResNet widths 8-16 at
// 16×16), batches of 4–8, generator width 8, a few iterations each: the file runs in seconds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as T from '../src/tensor/tensor.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { gradcheck } from '../src/testing/gradcheck.js';
import { ImageBank } from '../src/distill/bank.js';
import { distillLoop, type LoopConfig } from '../src/distill/loop.js';
import { createMethod } from '../src/distill/methods/index.js';
import { Cmi, CMI_DEFAULTS, contrastiveLoss, l2Normalize, randomResizedCrop } from '../src/distill/methods/cmi.js';
import type { DistillContext } from '../src/distill/types.js';
import { bitIdentical, familyContext, familyVal, maxStateDiff, snapshot, testLoopConfig, tinyTeachers, type Family, type TinyTeachers } from '../src/testing/method-fixtures.js';

/** Cheap settings (what the shared e2e / resume tests can use): a batch is finished every 3 steps. */
const SMALL = { latentDim: 16, baseChannels: 8, stepsPerBatch: 3, synthesisStepsPerIteration: 2, headDim: 16, memoryBatches: 2, negatives: 8, poolBatches: 4 };

let work: string;
let fx: TinyTeachers;

const makeCtx = (family: Family, studentSeed: number, batchSize = 8): DistillContext => familyContext(fx, family, studentSeed, batchSize);
const loopCfg = testLoopConfig;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'dfkd-cmi-test-'));
  fx = tinyTeachers();
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('contrastiveLoss (InfoNCE)', () => {
  test('matches a hand-worked value: 2 anchors, 2 positives, 1 negative, 2-d features, τ = 0.5', () => {
    const a = T.tensor([1, 0, 0, 1], { shape: [2, 2], dtype: 'float64' });
    const p = T.tensor([0.6, 0.8, 0.8, -0.6], { shape: [2, 2], dtype: 'float64' });
    const n = T.tensor([-1, 0], { shape: [1, 2], dtype: 'float64' });
    // row 1: a1·[p1, p2, n1] = [0.6, 0.8, −1] → /τ = [1.2, 1.6, −2], target 0
    const l1 = -1.2 + Math.log(Math.exp(1.2) + Math.exp(1.6) + Math.exp(-2));
    // row 2: a2·[p1, p2, n1] = [0.8, −0.6, 0] → /τ = [1.6, −1.2, 0], target 1
    const l2 = 1.2 + Math.log(Math.exp(1.6) + Math.exp(-1.2) + Math.exp(0));
    assert.ok(Math.abs(contrastiveLoss(a, p, n, 0.5).item() - (l1 + l2) / 2) < 1e-12);
    // without negatives the other positives are the only negatives
    const m1 = -1.2 + Math.log(Math.exp(1.2) + Math.exp(1.6));
    const m2 = 1.2 + Math.log(Math.exp(1.6) + Math.exp(-1.2));
    assert.ok(Math.abs(contrastiveLoss(a, p, null, 0.5).item() - (m1 + m2) / 2) < 1e-12);
    assert.ok(Math.abs(contrastiveLoss(a, p, T.zeros([0, 2], { dtype: 'float64' }), 0.5).item() - (m1 + m2) / 2) < 1e-12);
  });

  test('low when each anchor matches its own positive, high when it matches another', () => {
    const e = T.eye(3, 3, { dtype: 'float64' });
    const swapped = T.tensor([0, 1, 0, 1, 0, 0, 0, 0, 1], { shape: [3, 3], dtype: 'float64' });
    assert.ok(contrastiveLoss(e, e, null, 0.1).item() < 1e-3);
    assert.ok(contrastiveLoss(e, swapped, null, 0.1).item() > 5);
  });

  test('its gradient (through the L2 normalisation, to anchors, positives and negatives) matches finite differences in float64', () => {
    const vals = (n: number, k: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + k) + 0.3 * Math.cos(3.1 * i * k));
    const a = T.tensor(vals(3 * 4, 1), { shape: [3, 4], dtype: 'float64', requiresGrad: true });
    const p = T.tensor(vals(3 * 4, 2), { shape: [3, 4], dtype: 'float64', requiresGrad: true });
    const n = T.tensor(vals(5 * 4, 3), { shape: [5, 4], dtype: 'float64', requiresGrad: true });
    const r = gradcheck((x, y, z) => contrastiveLoss(l2Normalize(x), l2Normalize(y), l2Normalize(z), 0.2), [a, p, n]);
    assert.ok(r.ok, `gradcheck failed: max relative error ${r.maxRelError}, worst ${JSON.stringify(r.worst)}`);
  });

  test('rejects mismatched shapes and a non-positive temperature', () => {
    const a = T.zeros([2, 3]);
    assert.throws(() => contrastiveLoss(a, T.zeros([3, 3]), null, 0.1), /\[N, D\]/);
    assert.throws(() => contrastiveLoss(a, a, T.zeros([4, 2]), 0.1), /negatives/);
    assert.throws(() => contrastiveLoss(a, a, null, 0), /temperature/);
  });
});

describe('randomResizedCrop (the local view)', () => {
  test('keeps the shape, is differentiable, and with scale 1 and no flip is the identity', () => {
    T.manualSeed(3);
    const x = T.randn([4, 1, 8, 8], { requiresGrad: true });
    const y = randomResizedCrop(x, { minScale: 0.25 });
    assert.deepEqual(y.shape, [4, 1, 8, 8]);
    y.sum().backward();
    assert.ok(x.grad!.abs().sum().item() > 0);
    // area 1 at aspect ratio 1: the crop is the whole image, sampled at the pixel centres
    const whole = randomResizedCrop(x.detach(), { minScale: 1, maxScale: 1, ratio: [1, 1] });
    assert.ok(whole.sub(x.detach()).abs().max().item() < 1e-5);
  });
  test('a small crop zooms in: a one-pixel-wide stripe at the centre gets wider on average', () => {
    T.manualSeed(4);
    const x = T.zeros([64, 1, 16, 16]);
    T.noGrad(() => x.narrow(3, 7, 2).fill_(1));
    const y = randomResizedCrop(x, { minScale: 0.25, maxScale: 0.3 });
    assert.ok(y.mean().item() > x.mean().item(), `${y.mean().item()} vs ${x.mean().item()}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the memory bank', () => {
  test('an ImageBank of feature vectors: batches in order, the oldest overwritten when full', () => {
    const bank = new ImageBank(4);
    const batch = (v: number): Tensor => T.tensor([v, v + 0.5, v + 1, v + 1.5], { shape: [2, 2] });
    bank.add(batch(0));
    bank.add(batch(10));
    const rows = (): number[] => (bank.stateDict('m')['m.images'] as Tensor).toArray();
    assert.deepEqual(rows(), [0, 0.5, 1, 1.5, 10, 10.5, 11, 11.5]);
    bank.add(batch(20)); // full: batch 0 goes
    assert.equal(bank.size, 4);
    assert.deepEqual(rows(), [10, 10.5, 11, 11.5, 20, 20.5, 21, 21.5]);
    bank.dispose();
  });

  test('cmi: every finished batch puts its images in the pool and their [local | global] teacher features in the memory, oldest batch overwritten', () => {
    const B = 4;
    const ctx = makeCtx('lenet', 1, B);
    T.manualSeed(2);
    // jitter 0: the global view is the image itself, so the stored global features are f_T(pooled image)
    const m = new Cmi(ctx, { ...SMALL, stepsPerBatch: 2, synthesisStepsPerIteration: 1, memoryBatches: 2, poolBatches: 8, jitter: 0 });
    const F = m.featureDim;
    assert.equal(F, 120); // LeNet-5's conv3 output
    const check = (batches: number): void => {
      const mem = m.memoryFeatures()!;
      const held = Math.min(batches, 2) * B;
      assert.deepEqual(mem.shape, [held, 2 * F]);
      const pooled = m.previewBatch(ctx, held); // the newest `held` pool images, oldest first
      const f = T.noGrad(() => ctx.teacher.forward(pooled).feature);
      const diff = mem.narrow(1, F, F).sub(f).abs().max().item();
      assert.ok(diff < 1e-4, `after ${batches} batches: memory global features differ from f_T(pool) by ${diff}`);
    };
    assert.equal(m.memoryFeatures(), null);
    for (let it = 0, done = 0; done < 3; it++) {
      T.tidy(() => m.synthesize(ctx));
      if (m.pool.size / B > done) check(++done);
    }
    assert.equal(m.pool.size, 3 * B);
    assert.equal(m.memory!.size, 2 * B);
    m.dispose();
    ctx.student.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

describe('cmi end to end through distillLoop', () => {
  const cases: { family: Family; extra: Record<string, number | boolean>; prior: string | null }[] = [
    { family: 'vit', extra: {}, prior: null },
    { family: 'vit', extra: { wPs: 0.1, psSamplePoints: 8 }, prior: 'G/ps' },
    { family: 'lenet', extra: { wTv: 0.1 }, prior: null },
    { family: 'lenet', extra: { resetGenerator: false, keepBest: false }, prior: null },
    { family: 'resnet', extra: {}, prior: 'G/bn' },
  ];
  for (const { family, extra, prior } of cases) {
    test(`${family} teacher ${JSON.stringify(extra)}: 3 iterations train the student, bank 2 batches, log finite losses${prior ? ` (with ${prior})` : ''}`, () => {
      const ctx = makeCtx(family, 1);
      T.manualSeed(2);
      const method = createMethod('cmi', ctx, { ...SMALL, ...extra });
      const before0 = snapshot(ctx.student);
      const teacherBefore = snapshot(ctx.teacher);
      const rows: Record<string, number | undefined>[] = [];
      const samples: number[][] = [];
      const r = distillLoop(ctx, method, loopCfg(3, { evalEvery: 3, sampleEvery: 3 }), join(work, `e2e-${family}-${Object.keys(extra).join('-')}`), familyVal(fx, family), {
        onEval: (row) => rows.push(row),
        onSamples: (_it, pixels) => samples.push(pixels.shape.slice()),
      });
      assert.equal(r.iterations, 3);
      const row = rows[0]!;
      for (const k of ['G/oh', 'G/adv', 'G/cr', 'G/total', 'S/kd', ...(prior ? [prior] : [])]) assert.ok(Number.isFinite(row[k]), `${k} = ${row[k]} in ${JSON.stringify(row)}`);
      if (!prior) assert.ok(!('G/bn' in row) && !('G/ps' in row), 'a prior was logged for a teacher without one');
      if ('wTv' in extra) assert.ok(Number.isFinite(row['G/tv']));
      for (const [k, v] of Object.entries(row)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
      // 6 synthesis steps at 3 per batch: 2 finished batches (logged at the last iteration)
      const m = method as Cmi;
      assert.equal(m.pool.size, 2 * 8);
      assert.equal(m.memory!.size, 2 * 8);
      assert.equal(samples.length, 1);
      assert.ok(maxStateDiff(before0, snapshot(ctx.student)) > 0, 'the student did not change');
      assert.equal(maxStateDiff(teacherBefore, snapshot(ctx.teacher)), 0, 'the teacher changed');
      method.dispose();
      ctx.student.dispose();
    });
  }

  test('resnet (BatchNorm) teacher: the BN prior is on, finite, and falls over the synthesis steps on one fixed batch', () => {
    const ctx = makeCtx('resnet', 1);
    T.manualSeed(5);
    // one batch for all 30 steps (stepsPerBatch 1000): the generator is never reset; the full
    // objective at the default lr_g. Measured (seeds 5–8): R_feature 8.4–10.3 at the first step,
    // 3.0–3.4 at the 30th.
    const m = new Cmi(ctx, { ...SMALL, stepsPerBatch: 1000, synthesisStepsPerIteration: 1 });
    const bn: number[] = [];
    for (let s = 0; s < 30; s++) bn.push(T.tidy(() => m.synthesize(ctx).logs['G/bn']!));
    assert.ok(bn.every(Number.isFinite), bn.join(', '));
    const first = bn.slice(0, 3).reduce((a, b) => a + b) / 3;
    const last = bn.slice(-3).reduce((a, b) => a + b) / 3;
    assert.ok(last < 0.6 * first, `R_feature ${first.toFixed(3)} → ${last.toFixed(3)}: ${bn.map((v) => v.toFixed(2)).join(' ')}`);
    assert.equal(m.pool.size, 0);
    m.dispose();
    ctx.student.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

describe('cmi resume', () => {
  test('N iterations stopped at N/2 and resumed end with bit-identical student and method state to one uninterrupted run', () => {
    // 2 synthesis steps per iteration, 3 per batch: the checkpoint at iteration 2 falls inside the
    // second batch (a pooled batch, a memory, a candidate in progress and Adam state to carry over)
    const N = 4;
    const cfg = (iterations: number): LoopConfig => loopCfg(iterations, { checkpointEvery: N / 2 });
    const make = (ctx: DistillContext, seed: number): Cmi => {
      T.manualSeed(seed);
      return createMethod('cmi', ctx, { ...SMALL, studentSteps: 2 }) as Cmi;
    };
    const ctxA = makeCtx('vit', 1);
    const mA = make(ctxA, 2);
    distillLoop(ctxA, mA, cfg(N), join(work, 'resume-a'), fx.mnistVal);

    const ctxB = makeCtx('vit', 1);
    const mB = make(ctxB, 2);
    const outB = join(work, 'resume-b');
    assert.equal(distillLoop(ctxB, mB, cfg(N / 2), outB, fx.mnistVal).iterations, N / 2);
    const midB = snapshot(ctxB.student);
    mB.dispose();
    ctxB.student.dispose();

    const ctxC = makeCtx('vit', 99);
    const mC = make(ctxC, 98);
    assert.equal(distillLoop(ctxC, mC, cfg(N), outB, fx.mnistVal, { resume: true }).iterations, N);

    const a = snapshot(ctxA.student);
    const c = snapshot(ctxC.student);
    assert.ok(bitIdentical(a, c), `student weights differ after resume: max |Δ| = ${maxStateDiff(a, c)}`);
    const sa = mA.stateDict();
    const sc = mC.stateDict();
    assert.deepEqual(Object.keys(sa.tensors).sort(), Object.keys(sc.tensors).sort());
    assert.ok(bitIdentical(sa.tensors, sc.tensors), 'method state differs after resume');
    assert.deepEqual(sa.meta, sc.meta);
    assert.ok(maxStateDiff(midB, a) > 0, 'the student did not move after iteration N/2');
    assert.equal(mA.pool.size, 2 * 8);
    for (const m of [mA, mC]) m.dispose();
    for (const s of [ctxA.student, ctxC.student]) s.dispose();
    T.dispose([midB, sa.tensors, sc.tensors]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('cmi hyper-parameters', () => {
  test('the defaults are numbers and booleans (CLI flags) with CMI\'s CIFAR loss weights', () => {
    for (const [k, v] of Object.entries(CMI_DEFAULTS)) assert.ok(typeof v === 'number' || typeof v === 'boolean', k);
    assert.deepEqual([CMI_DEFAULTS.wBn, CMI_DEFAULTS.wOh, CMI_DEFAULTS.wAdv, CMI_DEFAULTS.wCr, CMI_DEFAULTS.tauCr], [1, 1, 0.5, 0.8, 0.1]);
  });

  test('bad values throw clear messages from the constructor', () => {
    const ctx = makeCtx('lenet', 1);
    const bad: [Record<string, number | boolean>, RegExp][] = [
      [{ wCr: -1 }, /--w-cr must be a finite number ≥ 0/],
      [{ wAdv: Number.NaN }, /--w-adv/],
      [{ tauCr: 0 }, /--tau-cr must be a finite number > 0/],
      [{ lrG: -1e-3 }, /--lr-g/],
      [{ stepsPerBatch: 0 }, /--steps-per-batch must be an integer ≥ 1/],
      [{ synthesisStepsPerIteration: 1.5 }, /--synthesis-steps-per-iteration/],
      [{ poolBatches: 0 }, /--pool-batches must be an integer ≥ 1/],
      [{ memoryBatches: 0 }, /--memory-batches/],
      [{ negatives: 0 }, /--negatives/],
      [{ flipProb: 2 }, /--flip-prob must be in \[0, 1\]/],
      [{ localMinScale: 0 }, /--local-min-scale/],
      [{ jitter: -1 }, /--jitter/],
      [{ wPs: 0.1 }, /needs a ViT teacher/],
    ];
    for (const [over, msg] of bad) assert.throws(() => createMethod('cmi', ctx, { ...SMALL, ...over }), msg, JSON.stringify(over));
    assert.throws(() => createMethod('cmi', ctx, { wBogus: 1 }), /has no hyper-parameter wBogus/);
    ctx.student.dispose();
  });

  test('the generator is re-initialised for every batch (CMI\'s reset_model), kept with resetGenerator false', () => {
    for (const reset of [true, false]) {
      const ctx = makeCtx('lenet', 1, 4);
      T.manualSeed(2);
      const m = new Cmi(ctx, { ...SMALL, stepsPerBatch: 2, synthesisStepsPerIteration: 1, resetGenerator: reset });
      const bias = (): number => m.generator.bn1.bias!.abs().max().item(); // 0 right after a reset
      assert.equal(bias(), 0);
      T.tidy(() => m.synthesize(ctx));
      assert.ok(bias() > 0, 'one Adam step moved the BatchNorm biases');
      T.tidy(() => m.synthesize(ctx)); // the second step finishes the batch
      assert.equal(m.pool.size, 4);
      if (reset) assert.equal(bias(), 0, 'the generator was not reset for the new batch');
      else assert.ok(bias() > 0, 'the generator was reset although resetGenerator is false');
      m.dispose();
      ctx.student.dispose();
    }
  });

  test('a state saved before the first synthesis step resumes: the first batch is drawn at the first step', () => {
    const ctx = makeCtx('lenet', 1, 4);
    T.manualSeed(2);
    const m1 = new Cmi(ctx, SMALL);
    T.manualSeed(3);
    const m2 = new Cmi(ctx, SMALL);
    const sd = m1.stateDict();
    assert.equal(sd.meta.started, false);
    m2.loadStateDict(sd);
    T.dispose(sd.tensors);
    assert.deepEqual(m2.previewBatch(ctx, 2).shape, [2, 1, 28, 28]);
    const run = (m: Cmi): Record<string, number> => {
      T.manualSeed(11);
      return T.tidy(() => m.synthesize(ctx).logs);
    };
    assert.deepEqual(run(m1), run(m2));
    m1.dispose();
    m2.dispose();
    ctx.student.dispose();
  });

  test('w_cr = 0 turns the contrastive term off: no head, no memory, and it still runs', () => {
    const ctx = makeCtx('lenet', 1, 4);
    T.manualSeed(2);
    const m = new Cmi(ctx, { ...SMALL, wCr: 0 });
    assert.equal(m.head, null);
    assert.equal(m.memory, null);
    const logs = T.tidy(() => m.synthesize(ctx).logs);
    assert.ok(!('G/cr' in logs) && Number.isFinite(logs['G/total']));
    const sd = m.stateDict();
    assert.ok(!Object.keys(sd.tensors).some((k) => k.startsWith('cmi.head') || k.startsWith('memory')));
    T.dispose(sd.tensors);
    m.dispose();
    ctx.student.dispose();
  });
});

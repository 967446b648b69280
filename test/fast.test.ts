// `fast` (Fast-DFKD): the Reptile meta update on a toy problem (quadratic tasks: one step against the
// hand-worked formula, the distance to the tasks' mean falling over meta-steps), one inner step on a
// fixed batch lowering L_G, the method end to end through distillLoop with a ViT, a LeNet-5 (no
// BatchNorm) and a tiny CIFAR-ResNet-style (BatchNorm) teacher, an exact resume, and bad
// hyper-parameters.
//
// Cost: random-weight tiny teachers (ViT width 24 depth 1 patch 7; LeNet-5; ResNet widths 8-16 at
// 16×16), batches of 8, generator width 8, a few iterations each: the file runs in seconds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as T from '../src/tensor/tensor.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { Adam, SGD } from '../src/nn/optim.js';
import { distillLoop, type LoopConfig } from '../src/distill/loop.js';
import { createMethod } from '../src/distill/methods/index.js';
import { applyMetaGradient, Fast, FAST_DEFAULTS, reptileGradient, reptileStep } from '../src/distill/methods/fast.js';
import type { DistillContext } from '../src/distill/types.js';
import { bitIdentical, familyContext, familyVal, maxStateDiff, snapshot, testLoopConfig, tinyTeachers, type Family, type TinyTeachers } from '../src/testing/method-fixtures.js';

/** Cheap settings (what the shared e2e / resume tests can use). */
const SMALL = { latentDim: 16, baseChannels: 8, warmupBatches: 1, studentSteps: 2, bankBatches: 4 };

let work: string;
let fx: TinyTeachers;

const makeCtx = (family: Family, studentSeed: number, batchSize = 8): DistillContext => familyContext(fx, family, studentSeed, batchSize);
const loopCfg = testLoopConfig;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'dfkd-fast-test-'));
  fx = tinyTeachers();
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('the Reptile meta update on a toy problem', () => {
  // Task k: f_k(φ) = ½‖φ − c_k‖². Plain gradient descent with lr α for n steps from θ gives
  // θ'_k = c_k + (1 − α)ⁿ(θ − c_k); Reptile with SGD(ε) on g = θ − θ'_k gives
  // θ ← θ + ε·(1 − (1 − α)ⁿ)·(c_k − θ): a step toward c_k, so cycling over the tasks drives θ to their mean.
  const C = [
    [1, -2, 3],
    [-1, 0, 2],
    [3, 2, -1],
    [1, 3, 0],
  ];
  const MEAN = [1, 0.75, 1];
  const ALPHA = 0.3;
  const N_INNER = 3;
  const f64 = (v: number[]): Tensor => T.tensor(v, { dtype: 'float64' });

  /** The inner loop on task k, from θ: n gradient steps on ½‖φ − c_k‖² with autograd. */
  function adapt(theta: Tensor, k: number): Tensor {
    return T.tidy(() => {
      const phi = T.keep(theta.detach().clone().requiresGrad_(true));
      const inner = new SGD([phi], { lr: ALPHA });
      const c = f64(C[k]!);
      for (let s = 0; s < N_INNER; s++) {
        inner.zeroGrad();
        phi.sub(c).square().sum().mul(0.5).backward();
        inner.step();
      }
      inner.zeroGrad();
      return phi.detach();
    });
  }
  const dist = (theta: Tensor, to: number[]): number => T.tidy(() => theta.detach().sub(f64(to)).norm(2).item());

  test('one step with SGD(ε) equals θ + ε·(1 − (1 − α)ⁿ)·(c − θ) (hand-worked), and reptileGradient is θ − θ′', () => {
    const theta = T.keep(f64([10, -4, 7]).requiresGrad_(true));
    const eps = 0.5;
    const meta = new SGD([theta], { lr: eps });
    const fast = adapt(theta, 0);
    const g = reptileGradient([theta], [fast])[0]!;
    const expectedG = [10, -4, 7].map((t, i) => (1 - (1 - ALPHA) ** N_INNER) * (t - C[0]![i]!));
    (g.toArray() as number[]).forEach((v, i) => assert.ok(Math.abs(v - expectedG[i]!) < 1e-12, `g[${i}] = ${v}, expected ${expectedG[i]}`));
    reptileStep(meta, [theta], [fast]);
    const expected = [10, -4, 7].map((t, i) => t + eps * (1 - (1 - ALPHA) ** N_INNER) * (C[0]![i]! - t));
    (theta.detach().toArray() as number[]).forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-12, `θ[${i}] = ${v}, expected ${expected[i]}`));
    assert.equal(theta.grad, null, 'the meta-gradient is cleared after the step');
    T.dispose([theta, fast, g]);
  });

  test('one step with Adam (the meta optimiser Fast uses): θ − lr·g/(|g| + ε_Adam), bias-corrected first step', () => {
    const theta = T.keep(f64([10, -4, 7]).requiresGrad_(true));
    const lr = 0.1;
    const meta = new Adam([theta], { lr, betas: [0.5, 0.999], eps: 1e-8 });
    const fast = adapt(theta, 1);
    const g = [10, -4, 7].map((t, i) => (1 - (1 - ALPHA) ** N_INNER) * (t - C[1]![i]!));
    applyMetaGradient(meta, [theta], reptileGradient([theta], [fast]));
    const expected = [10, -4, 7].map((t, i) => t - (lr * g[i]!) / (Math.abs(g[i]!) + 1e-8));
    (theta.detach().toArray() as number[]).forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-12, `θ[${i}] = ${v}, expected ${expected[i]}`));
    meta.disposeState();
    T.dispose([theta, fast]);
  });

  for (const kind of ['sgd', 'adam'] as const) {
    test(`${kind}: cycling over the tasks, meta-steps move θ to the mean of the tasks' solutions`, (t) => {
      const theta = T.keep(f64([10, -4, 7]).requiresGrad_(true));
      const meta = kind === 'sgd' ? new SGD([theta], { lr: 0.2 }) : new Adam([theta], { lr: 0.3, betas: [0.5, 0.999] });
      const d0 = dist(theta, MEAN);
      const ds: number[] = [];
      for (let step = 0; step < 80; step++) {
        const fast = adapt(theta, step % C.length);
        reptileStep(meta, [theta], [fast]);
        fast.dispose();
        if ((step + 1) % 20 === 0) ds.push(dist(theta, MEAN));
      }
      t.diagnostic(`distance to the mean of the c_k: ${d0.toFixed(3)} → ${ds.map((d) => d.toFixed(3)).join(' → ')}`);
      assert.ok(ds[0]! < d0, `${d0} → ${ds[0]}`);
      // the spread of the c_k around their mean is ≈ 2.4: θ ends well inside it
      assert.ok(ds[ds.length - 1]! < 0.1 * d0 && ds[ds.length - 1]! < 1, `final distance ${ds[ds.length - 1]} (start ${d0})`);
      meta.disposeState();
      theta.dispose();
    });
  }

  test('reptileGradient refuses mismatched parameter lists', () => {
    const a = f64([1, 2]);
    const b = f64([1, 2, 3]);
    assert.throws(() => reptileGradient([a], [b]), /parameter 0 is \[2\] in θ but \[3\] in θ'/);
    assert.throws(() => reptileGradient([a], []), /1 meta parameters but 0 fast ones/);
    T.dispose([a, b]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the inner (fast-weight) step', () => {
  // A first-order property, so a small step: lr_g 1e-3, lr_z 3e-3 (betas as Fast's). At Fast's CIFAR
  // lr_g 5e-3 Adam's first, sign-like step overshoots R_feature of this random tiny ResNet (width-8
  // generator) on seeds 2 and 3 (L_G 82.9 → 135.2, 47.0 → 115.0); at 1e-3 it falls on seeds 1–3
  // (139.2 → 125.8, 82.9 → 60.6, 47.0 → 40.0). The Δ of every seed is printed as a diagnostic.
  const LR_G = 1e-3;
  const LR_Z = 3e-3;
  for (const family of ['lenet', 'resnet', 'vit'] as const) {
    test(`${family}: one Adam step of θ′ and z (betas 0.5/0.999) on a fixed batch lowers L_G`, (t) => {
      for (const seed of [1, 2, 3]) {
        const ctx = makeCtx(family, seed);
        T.manualSeed(seed + 10);
        // no random view, so that the two evaluations see the same images; wTv on to cover it
        const m = new Fast(ctx, { ...SMALL, jitter: 0, wTv: 0.1, ...(family === 'vit' ? { wPs: 0.1 } : {}) });
        ctx.student.eval();
        const gen = m.fastGen;
        const z = T.keep(T.randn([8, 16]).requiresGrad_(true));
        const y = T.keep(T.randint(0, 10, [8]));
        const opt = new Adam([{ params: gen.parameters() }, { params: [z], lr: LR_Z }], { lr: LR_G, betas: [0.5, 0.999] });
        const before0 = T.tidy(() => {
          const r = m.generatorLoss(ctx, gen.forward(z), y);
          if (family === 'resnet') assert.ok(Number.isFinite(r.logs['G/bn']!) && r.logs['G/bn']! > 0, `G/bn = ${r.logs['G/bn']}`);
          if (family === 'vit') assert.ok(Number.isFinite(r.logs['G/ps']!), `G/ps = ${r.logs['G/ps']}`);
          if (family === 'lenet') assert.equal(r.logs['G/bn'], undefined);
          for (const [k, v] of Object.entries(r.logs)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
          opt.zeroGrad();
          r.loss.backward();
          opt.step();
          ctx.student.zeroGrad();
          return r.logs['G/total']!;
        });
        const after0 = T.tidy(() => m.generatorLoss(ctx, gen.forward(z), y).logs['G/total']!);
        t.diagnostic(`seed ${seed}: L_G ${before0.toFixed(5)} → ${after0.toFixed(5)} (Δ ${(after0 - before0).toExponential(2)})`);
        assert.ok(after0 < before0, `seed ${seed}: L_G ${before0} → ${after0}`);
        opt.disposeState();
        m.dispose();
        ctx.student.dispose();
        T.dispose([z, y]);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('end to end through distillLoop', () => {
  const cases: { family: Family; extra: Record<string, number | boolean>; label: string }[] = [
    { family: 'vit', extra: { wPs: 0.1 }, label: 'ViT teacher (patch prior on)' },
    { family: 'lenet', extra: {}, label: 'LeNet-5 teacher (no BatchNorm: no prior)' },
    { family: 'lenet', extra: { fomaml: true, keepBest: false, wTv: 0.01 }, label: 'LeNet-5 teacher, FOMAML meta-gradient' },
    { family: 'resnet', extra: {}, label: 'ResNet teacher (BatchNorm: R_feature with momentum)' },
  ];
  for (const { family, extra, label } of cases) {
    test(`${label}: 2 iterations update θ and the student (not the teacher), losses finite, pool filled`, () => {
      const ctx = makeCtx(family, 1);
      T.manualSeed(2);
      const method = createMethod('fast', ctx, { ...SMALL, ...extra }) as Fast;
      const student0 = snapshot(ctx.student);
      const teacher0 = snapshot(ctx.teacher);
      const meta0 = snapshot(method.meta);
      const out = mkdtempSync(join(work, `e2e-${family}-`));
      const r = distillLoop(ctx, method, loopCfg(2, { evalEvery: 2 }), out, familyVal(fx, family));
      assert.equal(r.iterations, 2);
      const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
      const row = rows[rows.length - 1]!;
      for (const [k, v] of Object.entries(row)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
      for (const k of ['S/kd', 'G/oh', 'G/adv', 'G/total', 'G/first', 'G/meta_norm']) assert.ok(k in row, `${k} not logged: ${Object.keys(row).join(', ')}`);
      if (family === 'resnet') assert.ok(row['G/bn']! > 0, `G/bn = ${row['G/bn']}`);
      if (family === 'vit') assert.ok('G/ps' in row);
      if (family === 'lenet') assert.ok(!('G/bn' in row) && !('G/ps' in row));
      // warm-up (1 batch) + one batch per iteration
      assert.equal(method.stateDict().meta.batchesDone, 3);
      assert.equal(method.bank.size, 3 * 8);
      assert.ok(maxStateDiff(student0, snapshot(ctx.student)) > 0, 'the student did not change');
      assert.ok(maxStateDiff(meta0, snapshot(method.meta)) > 0, 'the meta generator θ did not change');
      assert.equal(maxStateDiff(teacher0, snapshot(ctx.teacher)), 0, 'the teacher changed');
      const st = method.stateDict();
      if (family === 'resnet') assert.ok(st.tensors['fast.mmt.0.mean'], 'no BN-momentum statistics in the state');
      else assert.equal(st.tensors['fast.mmt.0.mean'], undefined);
      T.dispose(st.tensors);
      const preview = method.previewBatch(ctx, 4);
      assert.deepEqual(preview.shape, [4, ...ctx.inputShape]);
      preview.dispose();
      method.dispose();
      ctx.student.dispose();
    });
  }

  for (const [family, extra] of [['resnet', {}], ['lenet', { fomaml: true }]] as const) {
    test(`${family}${'fomaml' in extra ? ' (FOMAML)' : ''}: no tensor outlives an iteration (synthesis, pool sampling, student loss inside tidy)`, () => {
      const ctx = makeCtx(family, 1);
      T.manualSeed(2);
      const m = new Fast(ctx, { ...SMALL, ...extra });
      const iteration = (): void => {
        T.tidy(() => {
          m.synthesize(ctx);
          for (let k = 0; k < m.studentStepsPerIteration; k++) m.studentLoss(ctx, m.studentBatch(ctx)).loss.backward();
          ctx.student.zeroGrad();
        });
      };
      iteration();
      iteration();
      const live = T.liveTensors();
      for (let it = 2; it < 5; it++) iteration();
      assert.equal(T.liveTensors(), live, 'tensors leaked per iteration');
      m.dispose();
      ctx.student.dispose();
    });
  }

  test('the meta learning rate defaults to Fast\'s lr_g·g_steps, and --lr-meta overrides it', () => {
    const ctx = makeCtx('lenet', 1);
    const a = new Fast(ctx, { ...SMALL, gSteps: 5, lrG: 3e-3 });
    const b = new Fast(ctx, { ...SMALL, lrMeta: 0.02 });
    assert.ok(Math.abs(a.metaLr - 0.015) < 1e-15, `${a.metaLr}`);
    assert.equal(b.metaLr, 0.02);
    a.dispose();
    b.dispose();
    ctx.student.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

describe('resume', () => {
  for (const family of ['resnet', 'lenet'] as const) {
    test(`${family}: N iterations vs N/2 + resume: bit-identical student, meta-generator, its optimiser, the pool (and BN momentum)`, () => {
      const N = 4;
      const cfg = (iterations: number): LoopConfig => loopCfg(iterations, { checkpointEvery: N / 2 });
      const val = familyVal(fx, family);
      const make = (ctx: DistillContext, seed: number): Fast => {
        T.manualSeed(seed);
        return createMethod('fast', ctx, SMALL) as Fast;
      };

      const ctxA = makeCtx(family, 1);
      const mA = make(ctxA, 2);
      distillLoop(ctxA, mA, cfg(N), mkdtempSync(join(work, 'resume-a-')), val);

      const ctxB = makeCtx(family, 1);
      const mB = make(ctxB, 2);
      const outB = mkdtempSync(join(work, 'resume-b-'));
      assert.equal(distillLoop(ctxB, mB, cfg(N / 2), outB, val).iterations, N / 2);
      const midB = snapshot(ctxB.student);
      mB.dispose();
      ctxB.student.dispose();

      // a fresh process's view: a differently initialised student and method, everything from the checkpoint
      const ctxC = makeCtx(family, 99);
      const mC = make(ctxC, 98);
      assert.equal(distillLoop(ctxC, mC, cfg(N), outB, val, { resume: true }).iterations, N);

      const a = snapshot(ctxA.student);
      const c = snapshot(ctxC.student);
      assert.ok(bitIdentical(a, c), `student weights differ after resume: max |Δ| = ${maxStateDiff(a, c)}`);
      const sa = mA.stateDict();
      const sc = mC.stateDict();
      assert.ok(Object.keys(sa.tensors).some((k) => k.startsWith('fast.meta.')), 'no meta generator in the state');
      assert.ok(Object.keys(sa.tensors).some((k) => k.startsWith('fast.metaOptim.')), 'no meta optimiser in the state');
      assert.ok(sa.tensors['bank.images'], 'no pool in the state');
      if (family === 'resnet') assert.ok(sa.tensors['fast.mmt.0.var'], 'no BN momentum in the state');
      assert.ok(bitIdentical(sa.tensors, sc.tensors), 'method state differs after resume');
      assert.deepEqual(sa.meta, sc.meta);
      assert.ok(maxStateDiff(midB, a) > 0, 'the student did not move after iteration N/2');
      for (const m of [mA, mC]) m.dispose();
      for (const s of [ctxA.student, ctxC.student]) s.dispose();
      T.dispose([midB, sa.tensors, sc.tensors, a, c]);
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('bad hyper-parameters throw from the constructor with the flag named', () => {
  const cases: [Record<string, number | boolean>, RegExp, Family?][] = [
    [{ gSteps: 0 }, /--g-steps must be an integer ≥ 1, got 0/],
    [{ gSteps: 1.5 }, /--g-steps must be an integer ≥ 1, got 1.5/],
    [{ studentSteps: 0 }, /--student-steps must be an integer ≥ 1/],
    [{ bankBatches: 0 }, /--bank-batches must be an integer ≥ 1/],
    [{ wAdv: -1 }, /--w-adv must be a finite number ≥ 0, got -1/],
    [{ wBn: Number.NaN }, /--w-bn must be a finite number ≥ 0/],
    [{ lrG: 0 }, /--lr-g must be a finite number > 0/],
    [{ lrZ: -0.01 }, /--lr-z must be a finite number > 0/],
    [{ lrMeta: -1 }, /--lr-meta must be a finite number ≥ 0/],
    [{ tau: 0 }, /--tau must be a finite number > 0/],
    [{ bnMomentum: 1 }, /--bn-momentum must be in \[0, 1\)/],
    [{ flipProb: 2 }, /--flip-prob must be in \[0, 1\]/],
    [{ jitter: -1 }, /--jitter must be an integer ≥ 0/],
    [{ warmupBatches: -2 }, /--warmup-batches must be an integer ≥ 0/],
    [{ wOh: 0, wAdv: 0, wBn: 0, wPs: 0, wTv: 0 }, /every generator loss weight is 0/],
    [{ wPs: 0.1 }, /patch-similarity prior \(--w-ps\) needs a ViT teacher/, 'lenet'],
    [{ wPs: 0.1 }, /needs a ViT teacher/, 'resnet'],
  ];
  for (const [over, re, family] of cases) {
    test(`${JSON.stringify(over)}${family ? ` (${family} teacher)` : ''}`, () => {
      const ctx = makeCtx(family ?? 'lenet', 1);
      assert.throws(() => createMethod('fast', ctx, { ...SMALL, ...over }), re);
      ctx.student.dispose();
    });
  }
  test('an unknown hyper-parameter is refused by the registry, with the method\'s list', () => {
    const ctx = makeCtx('lenet', 1);
    assert.throws(() => createMethod('fast', ctx, { lrX: 1 }), /method fast has no hyper-parameter lrX; it has: .*gSteps/);
    ctx.student.dispose();
  });
  test('every default is a number or a boolean (each becomes a CLI flag)', () => {
    for (const [k, v] of Object.entries(FAST_DEFAULTS)) assert.ok(typeof v === 'number' || typeof v === 'boolean', `${k}: ${typeof v}`);
  });
});

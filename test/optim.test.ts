// Optimisers, LR schedules and gradient clipping, checked against updates worked out by hand.
//
// Most cases use float64 parameters with a gradient set directly (`p.grad = g`), so the expected
// values below follow from the torch.optim update rules with pencil-and-paper arithmetic; the
// comparisons allow 1e-12 for the float64 rounding of intermediate values (or are exact where the
// arithmetic is exact in binary).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { Tensor, liveTensors, manualSeed, noGrad, randn, tensor, tidy } from '../src/tensor/tensor.js';
import { Adam, AdamW, SGD, type BaseHyper, type Optimizer, type OptimizerState } from '../src/nn/optim.js';
import { LRScheduler, cosineWithWarmup, oneCycle, stepLR } from '../src/nn/schedule.js';
import { clipGradNorm } from '../src/nn/clip.js';

// ---------------------------------------------------------------------------------------------
// helpers

const f64 = (v: number[], shape?: number[]): Tensor => tensor(v, { dtype: 'float64', ...(shape ? { shape } : {}) });
const param = (v: number[], shape?: number[]): Tensor => f64(v, shape).requiresGrad_(true);

/** Sets p.grad to a copy of `v` (the temporary handle is freed; the gradient lives on in p). */
function setGrad(p: Tensor, v: number[], dtype: 'float64' | 'float32' = 'float64'): void {
  const g = tensor(v, { dtype, shape: p.shape });
  p.grad = g;
  g.dispose();
}

/** The values of p.grad (null if none), freeing the handle the getter makes. */
function gradOf(p: Tensor): number[] | null {
  const g = p.grad;
  if (g === null) return null;
  const v = g.toArray();
  g.dispose();
  return v;
}

function close(actual: number[], expected: number[], tol = 1e-12, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol, `${what}[${i}]: got ${a}, expected ${e} (tolerance ${tol})`);
  });
}

/** Runs a test body inside a tidy scope so every tensor it makes is freed afterwards. */
function scoped(fn: () => void): () => void {
  return () => {
    tidy(() => {
      fn();
    });
  };
}

// ---------------------------------------------------------------------------------------------
// Memory first: this file's process has made no garbage yet, so no collector finaliser can change
// the native handle count while it is being measured.

describe('memory', () => {
  test('live native tensor count after 200 steps equals the count after 10, with step() and clipGradNorm() outside any scope (SGD, Adam, AdamW, scheduler, state dicts: no leak)', () => {
    manualSeed(1);
    const A = randn([16, 3], { dtype: 'float64' });
    const b = randn([16], { dtype: 'float64' });
    const make = (): Tensor[] => [param([0, 0, 0]), param([0.5])];
    const setups = [
      (ps: Tensor[]) => new SGD(ps, { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
      (ps: Tensor[]) => new Adam(ps, { lr: 0.01, amsgrad: true, weightDecay: 1e-3 }),
      (ps: Tensor[]) => new AdamW(ps, { lr: 0.01 }),
    ];
    for (const setup of setups) {
      const ps = make();
      const opt = setup(ps);
      const sched = new LRScheduler(opt, cosineWithWarmup({ baseLr: 0.01, warmupSteps: 5, totalSteps: 200 }));
      let at10 = -1;
      for (let i = 1; i <= 200; i++) {
        opt.zeroGrad();
        tidy(() => {
          const loss = A.matmul(ps[0]!).add(ps[1]!).sub(b).square().mean();
          loss.backward();
        });
        // outside any scope: clipping and the step must free their own temporaries
        clipGradNorm(ps, 1.0);
        opt.step();
        sched.step();
        if (i % 50 === 0) tidy(() => void opt.stateDict()); // its copies are freed by the scope
        if (i === 10) at10 = liveTensors();
      }
      assert.equal(liveTensors(), at10, `${opt.kind}: live tensors after 200 steps vs after 10`);
      opt.disposeState();
      for (const p of ps) p.dispose();
    }
    A.dispose();
    b.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

describe('SGD', () => {
  test('plain SGD moves p by −lr·g each step (two steps by hand)', scoped(() => {
    const p = param([1, 2]);
    const opt = new SGD([p], { lr: 0.1 });
    setGrad(p, [0.5, -1]);
    opt.step(); // p = [1 − 0.05, 2 + 0.1] = [0.95, 2.1]
    close(p.toArray(), [0.95, 2.1]);
    opt.step(); // p = [0.95 − 0.05, 2.1 + 0.1] = [0.9, 2.2]
    close(p.toArray(), [0.9, 2.2]);
    assert.equal(opt.stateOf(p)?.buffers.momentum_buffer, undefined, 'no momentum buffer without momentum');
  }));

  test('momentum: the first buffer is the gradient itself, then b = μ·b + g (three steps by hand)', scoped(() => {
    const p = param([0, 0]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    setGrad(p, [1, -2]);
    opt.step(); // b = g = [1, −2];                            p = −0.1·b = [−0.1, 0.2]
    close(p.toArray(), [-0.1, 0.2]);
    opt.step(); // b = 0.9·[1, −2] + [1, −2] = [1.9, −3.8];    p = [−0.1 − 0.19, 0.2 + 0.38] = [−0.29, 0.58]
    close(p.toArray(), [-0.29, 0.58]);
    opt.step(); // b = 0.9·1.9 + 1 = 2.71 → [2.71, −5.42];     p = [−0.29 − 0.271, 0.58 + 0.542] = [−0.561, 1.122]
    close(p.toArray(), [-0.561, 1.122]);
    close(opt.stateOf(p)!.buffers.momentum_buffer!.toArray(), [2.71, -5.42]);
  }));

  test('dampening τ scales the gradient into the buffer from the second step on (torch: first buffer = g undamped)', scoped(() => {
    const p = param([0, 0]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.5 });
    setGrad(p, [1, -2]);
    opt.step(); // b = g = [1, −2] (no dampening on the first step);   p = [−0.1, 0.2]
    close(p.toArray(), [-0.1, 0.2]);
    opt.step(); // b = 0.9·g + (1 − 0.5)·g = 1.4·g = [1.4, −2.8];      p = [−0.24, 0.48]
    close(p.toArray(), [-0.24, 0.48]);
    opt.step(); // b = 0.9·1.4 + 0.5 = 1.76 → [1.76, −3.52];          p = [−0.416, 0.832]
    close(p.toArray(), [-0.416, 0.832]);
  }));

  test('nesterov with L2 weight decay: d = g + wd·p, b = μ·b + d, p −= lr·(d + μ·b) (two steps by hand)', scoped(() => {
    const p = param([1, -1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.1 });
    setGrad(p, [0.5, 0.5]);
    // step 1: d = [0.5 + 0.1, 0.5 − 0.1] = [0.6, 0.4]; b = d; d + 0.9·b = [1.14, 0.76]
    //         p = [1 − 0.114, −1 − 0.076] = [0.886, −1.076]
    opt.step();
    close(p.toArray(), [0.886, -1.076]);
    // step 2: d = [0.5 + 0.0886, 0.5 − 0.1076] = [0.5886, 0.3924]
    //         b = 0.9·[0.6, 0.4] + d = [1.1286, 0.7524]
    //         d + 0.9·b = [0.5886 + 1.01574, 0.3924 + 0.67716] = [1.60434, 1.06956]
    //         p = [0.886 − 0.160434, −1.076 − 0.106956] = [0.725566, −1.182956]
    opt.step();
    close(p.toArray(), [0.725566, -1.182956]);
  }));

  test('invalid hyper-parameters are rejected (nesterov without momentum or with dampening, negative lr)', scoped(() => {
    const p = param([1]);
    assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /nesterov/);
    assert.throws(() => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /nesterov/);
    assert.throws(() => new SGD([p], { lr: -1 }), /invalid lr/);
    assert.throws(() => new SGD([], { lr: 0.1 }), /empty parameter list/);
  }));
});

// ---------------------------------------------------------------------------------------------

describe('Adam / AdamW', () => {
  test('bias correction: with a constant gradient every step moves p by exactly lr·g/(|g| + eps) (default betas)', scoped(() => {
    // m_t = (1 − β1ᵗ)·g and v_t = (1 − β2ᵗ)·g², so m̂ = g and v̂ = g² at every t: each step is
    // lr·g/(|g| + eps). (Without bias correction step 1 would be lr·0.1·g/(√0.001·|g|) ≈ 0.32·lr.)
    const p = param([1, -1]);
    const opt = new Adam([p], { lr: 0.1 });
    setGrad(p, [2, -0.5]);
    const d = [(0.1 * 2) / (2 + 1e-8), (0.1 * -0.5) / (0.5 + 1e-8)];
    for (let t = 1; t <= 3; t++) {
      opt.step();
      close(p.toArray(), [1 - t * d[0]!, -1 - t * d[1]!], 1e-12, `step ${t}`);
    }
    assert.equal(opt.stateOf(p)!.step, 3);
  }));

  test('two steps with changing gradients match the hand-worked moments (betas 0.5/0.75, eps 0)', scoped(() => {
    const p = param([0, 0]);
    const opt = new Adam([p], { lr: 0.1, betas: [0.5, 0.75], eps: 0 });
    // step 1, g = [4, 1]: m = 0.5·g = [2, 0.5]; v = 0.25·g² = [4, 0.25]; bc1 = 0.5, bc2 = 0.25
    //   p −= (0.1/0.5)·m/(√v/√0.25) = 0.2·[2, 0.5]/[4, 1] = [0.1, 0.1]  →  p = [−0.1, −0.1]
    setGrad(p, [4, 1]);
    opt.step();
    close(p.toArray(), [-0.1, -0.1]);
    close(opt.stateOf(p)!.buffers.exp_avg!.toArray(), [2, 0.5]);
    close(opt.stateOf(p)!.buffers.exp_avg_sq!.toArray(), [4, 0.25]);
    // step 2, g = [2, −1]: m = 0.5·[2, 0.5] + 0.5·[2, −1] = [2, −0.25]
    //   v = 0.75·[4, 0.25] + 0.25·[4, 1] = [4, 0.4375]; bc1 = 0.75, bc2 = 1 − 0.5625 = 0.4375
    //   m̂ = [8/3, −1/3]; √v̂ = [√(4/0.4375), 1] = [8/√7, 1]
    //   p −= 0.1·[(8/3)/(8/√7), −1/3] = [0.1·√7/3, −0.1/3]  →  p = [−0.1 − 0.0881917…, −0.0666…]
    setGrad(p, [2, -1]);
    opt.step();
    close(p.toArray(), [-0.1 - (0.1 * Math.sqrt(7)) / 3, -0.1 + 0.1 / 3]);
    close(opt.stateOf(p)!.buffers.exp_avg!.toArray(), [2, -0.25]);
    close(opt.stateOf(p)!.buffers.exp_avg_sq!.toArray(), [4, 0.4375]);
  }));

  test('Adam weight decay is L2 added to the gradient, g + wd·p (two steps by hand)', scoped(() => {
    const p = param([2, 4]);
    const opt = new Adam([p], { lr: 0.1, betas: [0.5, 0.75], eps: 0, weightDecay: 0.5 });
    setGrad(p, [1, 1]);
    // step 1: g' = [1 + 1, 1 + 2] = [2, 3]; a first Adam step (eps 0) is lr·sign(g')  →  p = [1.9, 3.9]
    //         m = [1, 1.5], v = [1, 2.25]
    opt.step();
    close(p.toArray(), [1.9, 3.9]);
    // step 2: g' = [1 + 0.95, 1 + 1.95] = [1.95, 2.95]
    //         m = 0.5·[1, 1.5] + 0.5·[1.95, 2.95] = [1.475, 2.225]
    //         v = 0.75·[1, 2.25] + 0.25·[3.8025, 8.7025] = [1.700625, 3.863125]
    //         p −= (0.1/0.75)·m/(√v/√0.4375)  →  p = [1.8002494024366817, 3.800163717759817]
    opt.step();
    close(p.toArray(), [1.8002494024366817, 3.800163717759817]);
    close(opt.stateOf(p)!.buffers.exp_avg_sq!.toArray(), [1.700625, 3.863125]);
  }));

  test('amsgrad divides by the running maximum of v, not v itself (three steps by hand)', scoped(() => {
    const p = param([0]);
    const q = param([0]);
    const ams = new Adam([p], { lr: 0.1, betas: [0.5, 0.75], eps: 0, amsgrad: true });
    const plain = new Adam([q], { lr: 0.1, betas: [0.5, 0.75], eps: 0 });
    const both = (g: number): void => {
      setGrad(p, [g]);
      setGrad(q, [g]);
      ams.step();
      plain.step();
    };
    // step 1, g = 4: m = 2, v = 4, vmax = 4; p −= (0.1/0.5)·2/(2/0.5) = 0.1  →  p = −0.1 (both)
    both(4);
    close(p.toArray(), [-0.1]);
    close(q.toArray(), [-0.1]);
    // step 2, g = 1: m = 1.5, v = 0.75·4 + 0.25 = 3.25, vmax = max(4, 3.25) = 4
    //   amsgrad: p −= (0.1/0.75)·1.5/(√4/√0.4375) = 0.06614378277661477
    //   plain:   q −= (0.1/0.75)·1.5/(√3.25/√0.4375) = 0.07337993857053429
    both(1);
    close(p.toArray(), [-0.1 - 0.06614378277661477]);
    close(q.toArray(), [-0.1 - 0.07337993857053429]);
    close(ams.stateOf(p)!.buffers.max_exp_avg_sq!.toArray(), [4]);
    // step 3, g = 1: m = 1.25, v = 0.75·3.25 + 0.25 = 2.6875, vmax stays 4; bc1 = 0.875, bc2 = 0.578125
    //   p −= (0.1/0.875)·1.25/(2/√0.578125) = 0.05431037973480554  →  p = −0.22045416251142033
    both(1);
    close(p.toArray(), [-0.22045416251142033]);
    close(ams.stateOf(p)!.buffers.exp_avg_sq!.toArray(), [2.6875]);
    close(ams.stateOf(p)!.buffers.max_exp_avg_sq!.toArray(), [4]);
  }));

  test('AdamW decays p by (1 − lr·wd) before the Adam update and keeps wd out of the moments; default wd 1e-2', scoped(() => {
    const p = param([2, 4]);
    const opt = new AdamW([p], { lr: 0.1, betas: [0.5, 0.75], eps: 0, weightDecay: 0.5 });
    setGrad(p, [1, -1]);
    // step 1: p·(1 − 0.05) = [1.9, 3.8]; the constant-gradient Adam step is lr·sign(g)  →  [1.8, 3.9]
    opt.step();
    close(p.toArray(), [1.8, 3.9]);
    // step 2: p·0.95 = [1.71, 3.705]; again lr·sign(g)  →  [1.61, 3.805]
    opt.step();
    close(p.toArray(), [1.61, 3.805]);
    // the moments saw only g: m = (1 − 0.25)·g, v = (1 − 0.5625)·g²
    close(opt.stateOf(p)!.buffers.exp_avg!.toArray(), [0.75, -0.75]);
    close(opt.stateOf(p)!.buffers.exp_avg_sq!.toArray(), [0.4375, 0.4375]);
    assert.equal(new AdamW([param([0])]).paramGroups[0]!.weightDecay, 1e-2);
    assert.equal(new Adam([param([0])]).paramGroups[0]!.weightDecay, 0);
    assert.deepEqual(new Adam([param([0])]).paramGroups[0]!.betas, [0.9, 0.999]);
  }));

  test('each parameter counts its own steps for bias correction (a parameter first updated later starts at t = 1)', scoped(() => {
    const a = param([0]);
    const b = param([0]);
    const opt = new Adam([a, b], { lr: 0.1, betas: [0.5, 0.75], eps: 0 });
    setGrad(a, [1]);
    opt.step(); // only a has a gradient: b is skipped and gets no state
    assert.equal(opt.stateOf(b), undefined);
    setGrad(b, [1]);
    opt.step(); // b's first update, bias-corrected at its own t = 1: exactly lr·sign(g) = 0.1
    close(b.toArray(), [-0.1]);
    close(a.toArray(), [-0.2]);
    assert.equal(opt.stateOf(a)!.step, 2);
    assert.equal(opt.stateOf(b)!.step, 1);
  }));

  test('invalid Adam hyper-parameters are rejected (beta ≥ 1, negative eps)', scoped(() => {
    const p = param([1]);
    assert.throws(() => new Adam([p], { betas: [1, 0.999] }), /beta1/);
    assert.throws(() => new AdamW([p], { betas: [0.9, -0.1] }), /beta2/);
    assert.throws(() => new Adam([p], { eps: -1 }), /eps/);
  }));
});

// ---------------------------------------------------------------------------------------------

describe('groups, skipping and zeroGrad', () => {
  test('param groups keep their own hyper-parameters and inherit the rest from the defaults; setLr sets every group', scoped(() => {
    const a = param([0]);
    const b = param([0]);
    const opt = new SGD([{ params: [a], lr: 0.1 }, { params: [b], momentum: 0.9 }], { lr: 0.01 });
    assert.equal(opt.paramGroups[0]!.lr, 0.1);
    assert.equal(opt.paramGroups[0]!.momentum, 0);
    assert.equal(opt.paramGroups[1]!.lr, 0.01);
    assert.equal(opt.paramGroups[1]!.momentum, 0.9);
    setGrad(a, [1]);
    setGrad(b, [1]);
    opt.step(); // a = −0.1; b: buffer 1, b = −0.01
    opt.step(); // a = −0.2; b: buffer 1.9, b = −0.01 − 0.019 = −0.029
    close(a.toArray(), [-0.2]);
    close(b.toArray(), [-0.029]);
    opt.setLr(0.5);
    assert.deepEqual(opt.lrs, [0.5, 0.5]);
    opt.setLr([1, 2]);
    assert.deepEqual(opt.lrs, [1, 2]);
    opt.paramGroups[0]!.lr = 0; // direct edits take effect at the next step, as torch's param_groups
    opt.step();
    close(a.toArray(), [-0.2]);
  }));

  test('a parameter listed twice (in one group or in two) is rejected', scoped(() => {
    const a = param([0]);
    const b = param([0]);
    assert.throws(() => new SGD([a, a], { lr: 0.1 }), /more than once/);
    assert.throws(() => new Adam([{ params: [a, b] }, { params: [b] }]), /more than once/);
  }));

  test('parameters without a gradient are skipped: unchanged, no state, no state-dict entries', scoped(() => {
    const a = param([1, 1]);
    const b = param([5, 5]);
    const opt = new Adam([a, b], { lr: 0.1 });
    setGrad(a, [1, 1]);
    opt.step();
    assert.deepEqual(b.toArray(), [5, 5]);
    assert.equal(opt.stateOf(b), undefined);
    const sd = opt.stateDict();
    assert.deepEqual(Object.keys(sd.state).sort(), ['0.exp_avg', '0.exp_avg_sq']);
    assert.deepEqual(sd.meta.steps, { '0': 1 });
  }));

  test('zeroGrad() sets the gradients to null; zeroGrad(false) zeroes them in place', scoped(() => {
    const a = param([1, 2]);
    const b = param([3]);
    const opt = new SGD([a, b], { lr: 0.1 });
    setGrad(a, [1, 2]);
    setGrad(b, [3]);
    opt.zeroGrad(false);
    assert.deepEqual(gradOf(a), [0, 0]);
    assert.deepEqual(gradOf(b), [0]);
    opt.zeroGrad();
    assert.equal(gradOf(a), null);
    assert.equal(gradOf(b), null);
    opt.zeroGrad(false); // no gradients: nothing to do
    // gradients accumulate from backward after zeroGrad(false), as in torch
    setGrad(a, [1, 1]);
    opt.zeroGrad(false);
    a.mul(3).sum().backward();
    assert.deepEqual(gradOf(a), [3, 3]);
  }));
});

// ---------------------------------------------------------------------------------------------

describe('state dicts', () => {
  /** Three parameters of different shapes (the middle one gets no gradient on the first 2 steps). */
  const initial = (): Tensor[] => [
    param([0.5, -1, 2, 0.25, -0.75, 1.5], [2, 3]),
    param([1, 2, 3, 4]),
    param([-3]),
  ];
  const targets = [[1, 1, 1, -1, -1, -1], [0, 0, 0, 0], [2]];

  /** Gradient of Σ (p − c)² plus a step-dependent wiggle, so the trajectory depends on the state. */
  function gradients(ps: Tensor[], k: number): void {
    ps.forEach((p, i) => {
      if (i === 1 && k < 2) return;
      noGrad(() =>
        tidy(() => {
          const wiggle = f64(targets[i]!.map((_, j) => 0.3 * Math.sin(1.7 * k + j + i)), p.shape);
          p.grad = p.sub(f64(targets[i]!, p.shape)).mul(2).add(wiggle);
        }),
      );
    });
  }

  /** Through bytes and JSON text, as a safetensors checkpoint would carry it. */
  function serialise(sd: OptimizerState): { bytes: Map<string, { shape: number[]; data: Float64Array }>; json: string } {
    const bytes = new Map<string, { shape: number[]; data: Float64Array }>();
    for (const [k, t] of Object.entries(sd.state)) bytes.set(k, { shape: t.shape, data: Float64Array.from(t.data() as Float64Array) });
    return { bytes, json: JSON.stringify(sd.meta) };
  }
  function deserialise(s: ReturnType<typeof serialise>): OptimizerState {
    const state: Record<string, Tensor> = {};
    for (const [k, { shape, data }] of s.bytes) state[k] = tensor(data, { shape });
    return { state, meta: JSON.parse(s.json) as OptimizerState['meta'] };
  }

  type Make = (ps: Tensor[]) => Optimizer<BaseHyper>;
  const cases: [string, Make][] = [
    ['SGD (momentum, nesterov, wd, two groups)', (ps) =>
      new SGD([{ params: [ps[0]!, ps[1]!] }, { params: [ps[2]!], lr: 0.02 }], { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 })],
    ['Adam (amsgrad, L2, two groups)', (ps) =>
      new Adam([{ params: [ps[0]!] }, { params: [ps[1]!, ps[2]!], betas: [0.8, 0.99] }], { lr: 0.05, amsgrad: true, weightDecay: 0.01 })],
    ['AdamW', (ps) => new AdamW(ps, { lr: 0.05, weightDecay: 0.1 })],
  ];

  for (const [name, make] of cases) {
    test(`${name}: stateDict → bytes + JSON → loadStateDict continues bit-identically to an uninterrupted run`, scoped(() => {
      const total = 10;
      const resumeAt = 5;
      const schedule = cosineWithWarmup({ baseLr: 0.05, warmupSteps: 2, totalSteps: total, minLr: 0.001 });
      // uninterrupted
      const ref = initial();
      const refOpt = make(ref);
      const refSched = new LRScheduler(refOpt, schedule);
      for (let k = 0; k < total; k++) {
        gradients(ref, k);
        refOpt.step();
        refSched.step();
      }
      // interrupted at resumeAt: only bytes, JSON and fresh objects cross over
      const first = initial();
      const opt1 = make(first);
      const sched1 = new LRScheduler(opt1, schedule);
      for (let k = 0; k < resumeAt; k++) {
        gradients(first, k);
        opt1.step();
        sched1.step();
      }
      const sd = opt1.stateDict();
      const saved = serialise(sd);
      const savedSched = JSON.stringify(sched1.stateDict());
      const savedParams = first.map((p) => ({ shape: p.shape, data: Float64Array.from(p.data() as Float64Array) }));
      opt1.disposeState();
      for (const t of Object.values(sd.state)) t.dispose();

      const second = savedParams.map(({ shape, data }) => tensor(data, { shape }).requiresGrad_(true));
      const opt2 = make(second);
      opt2.setLr(123); // overwritten by the state dict's hyper-parameters and the scheduler
      const loaded = deserialise(saved);
      opt2.loadStateDict(loaded);
      for (const t of Object.values(loaded.state)) t.dispose(); // the optimiser copied them
      const sched2 = new LRScheduler(opt2, schedule);
      sched2.loadStateDict(JSON.parse(savedSched));
      assert.deepEqual(opt2.lrs, opt1.lrs);
      for (let k = resumeAt; k < total; k++) {
        gradients(second, k);
        opt2.step();
        sched2.step();
      }
      second.forEach((p, i) => assert.deepEqual(p.toArray(), ref[i]!.toArray(), `parameter ${i}`));
      ref.forEach((p) => assert.equal(opt2.stateOf(second[ref.indexOf(p)]!)!.step, refOpt.stateOf(p)!.step));
    }));
  }

  test('stateDict has "<index>.<buffer>" keys, JSON meta with hyper-parameters and step counts, and returns copies', scoped(() => {
    const a = param([1, 2]);
    const b = param([3]);
    const opt = new Adam([{ params: [a] }, { params: [b], lr: 0.5 }], { amsgrad: true });
    setGrad(a, [1, 1]);
    setGrad(b, [1]);
    opt.step();
    opt.step();
    const sd = opt.stateDict();
    assert.deepEqual(Object.keys(sd.state).sort(), ['0.exp_avg', '0.exp_avg_sq', '0.max_exp_avg_sq', '1.exp_avg', '1.exp_avg_sq', '1.max_exp_avg_sq']);
    assert.deepEqual(JSON.parse(JSON.stringify(sd.meta)), {
      optimizer: 'Adam',
      version: 1,
      paramGroups: [
        { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: true, params: [0] },
        { lr: 0.5, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: true, params: [1] },
      ],
      steps: { '0': 2, '1': 2 },
    });
    const before = opt.stateOf(a)!.buffers.exp_avg!.toArray();
    sd.state['0.exp_avg']!.fill_(99);
    sd.state['0.exp_avg_sq']!.dispose();
    assert.deepEqual(opt.stateOf(a)!.buffers.exp_avg!.toArray(), before);
    opt.step(); // still works: the optimiser's own tensors were untouched
  }));

  test('loadStateDict throws a clear shape-mismatch error and leaves the optimiser unchanged', scoped(() => {
    const a = param([1, 2]);
    const opt = new Adam([a], { lr: 0.1 });
    setGrad(a, [1, 1]);
    opt.step();
    const sd = opt.stateDict();
    const other = param([1, 2, 3]);
    const opt2 = new Adam([other], { lr: 0.7 });
    assert.throws(
      () => opt2.loadStateDict(sd),
      (e: Error) => /shape mismatch/.test(e.message) && e.message.includes('"0.exp_avg"') && e.message.includes('[2]') && e.message.includes('[3]'),
    );
    assert.equal(opt2.stateOf(other), undefined);
    assert.equal(opt2.paramGroups[0]!.lr, 0.7);
  }));

  test('loadStateDict rejects another optimiser\'s state, unknown buffers, wrong group sizes and incomplete state', scoped(() => {
    const a = param([1, 2]);
    const b = param([3]);
    const opt = new Adam([a, b], { amsgrad: true });
    setGrad(a, [1, 1]);
    setGrad(b, [1]);
    opt.step();
    const sd = opt.stateDict();
    assert.throws(() => new AdamW([param([1, 2]), param([3])]).loadStateDict(sd), /for Adam, not AdamW/);
    assert.throws(() => new Adam([param([1, 2])]).loadStateDict(sd), /param group 0 has 2 parameters in the state dict but 1/);
    assert.throws(() => new Adam([{ params: [param([1, 2])] }, { params: [param([3])] }]).loadStateDict(sd), /param groups/);
    const fresh = (): Adam => new Adam([param([1, 2]), param([3])]);
    assert.throws(() => fresh().loadStateDict({ ...sd, state: { ...sd.state, '0.momentum_buffer': sd.state['0.exp_avg']! } }), /unknown state buffer "0.momentum_buffer"/);
    assert.throws(() => fresh().loadStateDict({ ...sd, state: { ...sd.state, '7.exp_avg': sd.state['0.exp_avg']! } }), /names parameter 7/);
    const { ['1.max_exp_avg_sq']: _dropped, ...incomplete } = sd.state;
    assert.throws(() => fresh().loadStateDict({ ...sd, state: incomplete }), /no "1.max_exp_avg_sq"/);
    const ok = fresh();
    ok.loadStateDict(sd);
    assert.equal(ok.stateOf(ok.parameters()[1]!)!.step, 1);
  }));
});

// ---------------------------------------------------------------------------------------------

describe('schedules', () => {
  test('cosineWithWarmup: warmupStartLr at 0, baseLr at the end of warm-up, (base+min)/2 at the cosine midpoint, minLr at and after the end', () => {
    const f = cosineWithWarmup({ baseLr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1, warmupStartLr: 0.2 });
    close([f(0)], [0.2]);
    close([f(5)], [0.6]); // 0.2 + 5·(1 − 0.2)/10
    close([f(10)], [1]);
    close([f(35)], [0.1 + 0.45 * (1 + Math.SQRT1_2)]); // a quarter of the cosine: cos(π/4)
    close([f(60)], [0.55]); // cos(π/2) = 0
    close([f(110)], [0.1]);
    close([f(500)], [0.1]);
    const g = cosineWithWarmup({ baseLr: 2, warmupSteps: 0, totalSteps: 4 });
    close([g(0), g(2), g(4)], [2, 1, 0]);
    // timm's default (warmup_prefix=False): the cosine spans [0, T], so at t = W it has already decayed
    const h = cosineWithWarmup({ baseLr: 1, warmupSteps: 10, totalSteps: 100, warmupPrefix: false });
    close([h(5), h(10), h(50)], [0.5, 0.5 * (1 + Math.cos(Math.PI / 10)), 0.5]);
  });

  test('stepLR: baseLr·gamma^⌊t/stepSize⌋, decaying exactly at the multiples of stepSize', () => {
    const f = stepLR({ baseLr: 1, stepSize: 30, gamma: 0.1 });
    assert.equal(f(0), 1);
    assert.equal(f(29), 1);
    close([f(30), f(59), f(60), f(89), f(90)], [0.1, 0.1, 0.01, 0.01, 0.001], 1e-15);
  });

  test('oneCycle: maxLr/div at 0, maxLr at pctStart·T − 1, maxLr/div/finalDiv at T − 1, cosine in between (as torch\'s OneCycleLR)', () => {
    // T = 80, pctStart 0.25: phase 1 ends at 0.25·80 − 1 = 19, phase 2 at 79
    const f = oneCycle({ maxLr: 1, totalSteps: 80, pctStart: 0.25 });
    close([f(0)], [0.04]); // 1/25
    close([f(19)], [1]);
    close([f(79)], [0.04 / 1e4]);
    close([f(49)], [(1 + 4e-6) / 2]); // phase-2 midpoint: (19 + 79)/2
    close([f(5)], [1 + ((0.04 - 1) / 2) * (Math.cos((Math.PI * 5) / 19) + 1)]);
    close([f(200)], [4e-6]); // held at the end
    // torch's defaults: pctStart 0.3, divFactor 25, finalDivFactor 1e4
    const d = oneCycle({ maxLr: 0.5, totalSteps: 100 });
    close([d(0), d(29), d(99)], [0.02, 0.5, 2e-6], 1e-12);
    assert.ok(d(28) < d(29) && d(30) < d(29), 'the peak is at step 29');
  });

  test('LRScheduler: construction sets the step-0 rate, step() advances, lrScale multiplies per group, state round-trips', scoped(() => {
    const a = param([0]);
    const b = param([0]);
    const opt = new SGD([{ params: [a] }, { params: [b], lrScale: 0.5 }], { lr: 123 });
    const sched = new LRScheduler(opt, stepLR({ baseLr: 0.1, stepSize: 2, gamma: 0.5 }));
    assert.equal(sched.lastLr, 0.1);
    assert.deepEqual(opt.lrs, [0.1, 0.05]);
    sched.step(); // t = 1
    assert.deepEqual(opt.lrs, [0.1, 0.05]);
    sched.step(); // t = 2
    assert.equal(sched.lastLr, 0.05);
    assert.deepEqual(opt.lrs, [0.05, 0.025]);
    const s = sched.stateDict();
    assert.deepEqual(s, { step: 2, lastLr: 0.05 });
    const opt2 = new SGD([param([0])], { lr: 9 });
    const sched2 = new LRScheduler(opt2, stepLR({ baseLr: 0.1, stepSize: 2, gamma: 0.5 }));
    sched2.loadStateDict(s);
    assert.equal(opt2.paramGroups[0]!.lr, 0.05);
    sched2.step();
    sched2.step(); // t = 4
    assert.equal(opt2.paramGroups[0]!.lr, 0.025);
  }));

  test('invalid schedule options are rejected with RangeError', () => {
    assert.throws(() => cosineWithWarmup({ baseLr: 1, warmupSteps: 10, totalSteps: 10 }), RangeError);
    assert.throws(() => stepLR({ baseLr: 1, stepSize: 0 }), RangeError);
    assert.throws(() => oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 1 }), RangeError);
  });
});

// ---------------------------------------------------------------------------------------------

describe('clipGradNorm', () => {
  test('a [3, 4] gradient (norm 5) clipped to 1 becomes [0.6, 0.8] and 5 is returned', scoped(() => {
    const p = param([0, 0]);
    setGrad(p, [3, 4]);
    const n = clipGradNorm([p], 1);
    assert.equal(n, 5);
    // coef = 1/(5 + 1e-6)
    close(gradOf(p)!, [3 / (5 + 1e-6), 4 / (5 + 1e-6)], 1e-15);
    close(gradOf(p)!, [0.6, 0.8], 1e-6);
  }));

  test('gradients under the max norm are left bit-identical', scoped(() => {
    const p = param([0, 0]);
    setGrad(p, [3, 4]);
    assert.equal(clipGradNorm([p], 10), 5);
    assert.deepEqual(gradOf(p), [3, 4]);
  }));

  test('the norm is joint over all parameters; parameters without a gradient are ignored', scoped(() => {
    const a = param([0]);
    const b = param([0, 0]);
    const c = param([7]); // no gradient
    setGrad(a, [3]);
    setGrad(b, [0, -4]);
    assert.equal(clipGradNorm([a, b, c], 2.5), 5);
    close(gradOf(a)!, [(3 * 2.5) / (5 + 1e-6)], 1e-15);
    close(gradOf(b)!, [0, (-4 * 2.5) / (5 + 1e-6)], 1e-15);
    assert.equal(gradOf(c), null);
    assert.equal(clipGradNorm([c], 1), 0, 'no gradients: norm 0');
  }));

  test('inf-norm is the largest |g| and 1-norm the sum of |g|', scoped(() => {
    const a = param([0, 0]);
    const b = param([0]);
    setGrad(a, [3, -4]);
    setGrad(b, [1]);
    assert.equal(clipGradNorm([a, b], 100, 'inf'), 4);
    assert.equal(clipGradNorm([a, b], 100, Infinity), 4);
    assert.equal(clipGradNorm([a, b], 100, 1), 8);
    assert.equal(clipGradNorm([a, b], 2, 'inf'), 4);
    close(gradOf(a)!, [(3 * 2) / (4 + 1e-6), (-4 * 2) / (4 + 1e-6)], 1e-15);
  }));

  test('a non-finite total norm (NaN or ∞ gradient) is returned and the gradients are left as they were', scoped(() => {
    const a = param([0, 0]);
    const b = param([0]);
    setGrad(a, [NaN, 1]);
    setGrad(b, [2]);
    assert.ok(Number.isNaN(clipGradNorm([a, b], 1)));
    assert.deepEqual(gradOf(b), [2]);
    setGrad(a, [Infinity, 1]);
    assert.equal(clipGradNorm([a, b], 1), Infinity);
    assert.deepEqual(gradOf(a), [Infinity, 1]);
    assert.deepEqual(gradOf(b), [2]);
  }));

  test('float32 gradients are clipped in float32', scoped(() => {
    const p = tensor([0, 0], { requiresGrad: true });
    setGrad(p, [3, 4], 'float32');
    assert.ok(Math.abs(clipGradNorm([p], 1) - 5) < 1e-6);
    const g = p.grad!;
    assert.equal(g.dtype, 'float32');
    close(g.toArray(), [0.6, 0.8], 1e-6);
    g.dispose();
  }));
});

// ---------------------------------------------------------------------------------------------

describe('convergence', () => {
  // Least squares with a known solution: A (64×4, N(0,1)), x* = [1, −2, 3, 0.5], b = A·x*, loss = mean((Ax − b)²).
  const xStar = [1, -2, 3, 0.5];
  function solve(make: (x: Tensor) => Optimizer<BaseHyper>, steps: number, schedule?: (o: Optimizer<BaseHyper>) => LRScheduler): number[] {
    return tidy(() => {
      manualSeed(42);
      const A = randn([64, 4], { dtype: 'float64' });
      const b = A.matmul(f64(xStar));
      const x = param([0, 0, 0, 0]);
      const opt = make(x);
      const sched = schedule?.(opt);
      for (let i = 0; i < steps; i++) {
        tidy(() => {
          opt.zeroGrad();
          A.matmul(x).sub(b).square().mean().backward();
          opt.step();
          sched?.step();
        });
      }
      opt.disposeState();
      return x.toArray();
    });
  }

  test('SGD with nesterov momentum solves least squares to within 1e-8 in 300 steps', () => {
    close(solve((x) => new SGD([x], { lr: 0.05, momentum: 0.9, nesterov: true }), 300), xStar, 1e-8, 'SGD');
  });

  test('Adam with a cosine schedule solves least squares to within 1e-6 in 1500 steps', () => {
    const x = solve((p) => new Adam([p], { lr: 0.1 }), 1500, (o) => new LRScheduler(o, cosineWithWarmup({ baseLr: 0.1, warmupSteps: 20, totalSteps: 1500 })));
    close(x, xStar, 1e-6, 'Adam');
  });

  test('AdamW (weightDecay 0) and amsgrad Adam with a cosine schedule solve least squares to within 1e-6', () => {
    const sched = (o: Optimizer<BaseHyper>): LRScheduler => new LRScheduler(o, cosineWithWarmup({ baseLr: 0.1, warmupSteps: 20, totalSteps: 1500 }));
    close(solve((p) => new AdamW([p], { lr: 0.1, weightDecay: 0 }), 1500, sched), xStar, 1e-6, 'AdamW');
    close(solve((p) => new Adam([p], { lr: 0.1, amsgrad: true }), 1500, sched), xStar, 1e-6, 'amsgrad');
  });

  test('AdamW with weight decay converges to the shrunk solution, closer to 0 than x*', () => {
    const x = solve((p) => new AdamW([p], { lr: 0.05, weightDecay: 0.5 }), 1500);
    const norm = (v: number[]): number => Math.hypot(...v);
    assert.ok(norm(x) < norm(xStar) - 0.01, `‖x‖ = ${norm(x)} vs ‖x*‖ = ${norm(xStar)}`);
  });
});

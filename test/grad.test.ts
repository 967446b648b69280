// Autograd: gradcheck (float64 central differences, relative error < 1e-5) of every operator the nn
// layers use, and the behaviour of backward/grad/detach/noGrad/inferenceMode.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { F, gradcheck, type Tensor } from '../src/index.js';
import { native } from '../src/native/binding.js';

// ---------------------------------------------------------------------------------------------
// helpers

/** Deterministic values in (−2, 2) from a small PRNG (mulberry32), independent of libtorch's RNG. */
function values(n: number, seed: number, lo = -2, hi = 2): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out.push(lo + (hi - lo) * u);
  }
  return out;
}

let seedCounter = 1;
/** A float64 leaf with requiresGrad, filled with deterministic values in [lo, hi). */
function leaf(shape: number[], lo = -2, hi = 2): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return T.tensor(values(n, seedCounter++, lo, hi), { shape, dtype: 'float64', requiresGrad: true });
}
/** Like leaf, but every value at least `margin` away from each of `points` (for kinks). */
function leafAway(shape: number[], points: number[], margin = 0.05, lo = -2, hi = 2): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = values(n, seedCounter++, lo, hi).map((x) => {
    for (const p of points) {
      if (Math.abs(x - p) < margin) x = p + (x >= p ? margin : -margin);
    }
    return x;
  });
  return T.tensor(v, { shape, dtype: 'float64', requiresGrad: true });
}
function fromValues(v: number[], shape: number[]): Tensor {
  return T.tensor(v, { shape, dtype: 'float64', requiresGrad: true });
}
const i64 = (v: unknown[]): Tensor => T.tensor(v as number[], { dtype: 'int64' });

function check(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  const r = gradcheck(fn, inputs);
  assert.ok(r.ok, `gradcheck failed: max relative error ${r.maxRelError}, worst ${JSON.stringify(r.worst)}`);
  assert.ok(r.maxRelError < 1e-5);
}

function close(actual: Tensor | number[] | number, expected: number[] | number, tol = 1e-10): void {
  const a = typeof actual === 'number' ? [actual] : Array.isArray(actual) ? actual : actual.toArray();
  const e = typeof expected === 'number' ? [expected] : expected;
  assert.equal(a.length, e.length, `length ${a.length} vs ${e.length}`);
  for (let i = 0; i < e.length; i++) {
    assert.ok(Math.abs(a[i]! - e[i]!) <= tol * Math.max(1, Math.abs(e[i]!)), `[${i}] got ${a[i]}, expected ${e[i]}; all [${a.join(', ')}]`);
  }
}

// ---------------------------------------------------------------------------------------------

describe('gradcheck itself', () => {
  test('rejects a wrong analytic gradient (x.detach()·x has true derivative 2x, autograd sees x)', () => {
    const x = leafAway([4], [0], 0.5);
    const r = gradcheck((a) => a.detach().mul(a), [x]);
    assert.equal(r.ok, false);
    assert.ok(r.maxRelError > 0.1);
  });

  test('refuses float32 inputs and inputs without requiresGrad', () => {
    assert.throws(() => gradcheck((a) => a.mul(2), [T.ones([2], { requiresGrad: true })]), /float64/);
    assert.throws(() => gradcheck((a) => a.mul(2), [T.ones([2], { dtype: 'float64' })]), /require/);
  });
});

describe('gradcheck: linear algebra', () => {
  test('matmul 2-D and batched with broadcasting', () => {
    check((a, b) => a.matmul(b), [leaf([3, 4]), leaf([4, 2])]);
    check((a, b) => a.matmul(b), [leaf([2, 3, 4]), leaf([4, 2])]);
  });
  test('mm and bmm', () => {
    check((a, b) => a.mm(b), [leaf([2, 3]), leaf([3, 2])]);
    check((a, b) => a.bmm(b), [leaf([2, 3, 4]), leaf([2, 4, 2])]);
  });
  test('linear with bias (input, weight and bias)', () => {
    check((x, w, b) => F.linear(x, w, b), [leaf([3, 4]), leaf([2, 4]), leaf([2])]);
    check((x, w) => F.linear(x, w), [leaf([2, 3, 4]), leaf([5, 4])]);
  });
});

describe('gradcheck: elementwise', () => {
  test('add/sub/mul/div with broadcasting, alpha and scalars', () => {
    check((a, b) => a.add(b, 2), [leaf([2, 3]), leaf([3])]);
    check((a, b) => a.sub(b), [leaf([2, 1]), leaf([1, 3])]);
    check((a, b) => a.mul(b), [leaf([2, 3]), leaf([2, 1])]);
    check((a, b) => a.div(b), [leaf([2, 3]), leaf([3], 0.5, 2)]);
    check((a) => a.mul(3).add(1).rsub(2).div(4), [leaf([3])]);
  });
  test('pow with scalar and tensor exponents', () => {
    check((a) => a.pow(3), [leaf([4])]);
    check((a) => a.pow(2.5), [leaf([4], 0.2, 2)]);
    check((a, b) => a.pow(b), [leaf([4], 0.2, 2), leaf([4])]);
  });
  test('exp, log, sqrt', () => {
    check((a) => a.exp(), [leaf([5])]);
    check((a) => a.log(), [leaf([5], 0.1, 3)]);
    check((a) => a.sqrt(), [leaf([5], 0.1, 3)]);
  });
  test('tanh, sigmoid', () => {
    check((a) => a.tanh(), [leaf([6])]);
    check((a) => a.sigmoid(), [leaf([6])]);
  });
  test('relu and leaky_relu away from 0', () => {
    check((a) => a.relu(), [leafAway([8], [0])]);
    check((a) => a.leakyRelu(0.1), [leafAway([8], [0])]);
  });
  test('gelu, exact erf form and tanh approximation', () => {
    check((a) => a.gelu(), [leaf([8], -3, 3)]);
    check((a) => a.gelu('tanh'), [leaf([8], -3, 3)]);
  });
  test('clamp away from the bounds', () => {
    check((a) => a.clamp(-0.5, 0.5), [leafAway([10], [-0.5, 0.5])]);
    check((a) => a.clampMin(0.2), [leafAway([6], [0.2])]);
  });
});

describe('gradcheck: softmax and normalisation', () => {
  test('softmax and log_softmax along the last and the first dim', () => {
    check((a) => a.softmax(-1), [leaf([2, 4])]);
    check((a) => a.softmax(0), [leaf([3, 2])]);
    check((a) => F.logSoftmax(a, 1), [leaf([2, 4])]);
  });
  test('layer_norm: input, weight and bias', () => {
    check((x, w, b) => F.layerNorm(x, [5], w, b), [leaf([3, 5]), leaf([5]), leaf([5])]);
    check((x) => F.layerNorm(x, [2, 3]), [leaf([2, 2, 3])]);
  });
  test('batch_norm in training mode: input, weight and bias (2-D and 4-D)', () => {
    check((x, w, b) => F.batchNorm(x, null, null, w, b, true), [leaf([4, 3]), leaf([3]), leaf([3])]);
    check((x, w, b) => F.batchNorm(x, null, null, w, b, true), [leaf([3, 2, 2, 2]), leaf([2]), leaf([2])]);
  });
  test('batch_norm in eval mode with running stats', () => {
    const rm = T.tensor([0.1, -0.2], { dtype: 'float64' });
    const rv = T.tensor([1.5, 0.5], { dtype: 'float64' });
    check((x, w, b) => F.batchNorm(x, rm, rv, w, b, false), [leaf([3, 2]), leaf([2]), leaf([2])]);
  });
});

describe('gradcheck: convolution, resampling, pooling', () => {
  test('conv2d with stride 2 and padding 1 (input, weight, bias)', () => {
    check((x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: 1 }), [leaf([1, 2, 5, 5]), leaf([3, 2, 3, 3]), leaf([3])]);
  });
  test('conv2d patch embedding (kernel = stride, as a ViT stem)', () => {
    check((x, w) => F.conv2d(x, w, null, { stride: 2 }), [leaf([2, 1, 4, 4]), leaf([3, 1, 2, 2])]);
  });
  test('conv_transpose2d with stride 2 (input, weight, bias)', () => {
    check((x, w, b) => F.convTranspose2d(x, w, b, { stride: 2 }), [leaf([1, 2, 3, 3]), leaf([2, 3, 2, 2]), leaf([3])]);
    check((x, w) => F.convTranspose2d(x, w, null, { stride: 2, padding: 1, outputPadding: 1 }), [leaf([1, 1, 3, 3]), leaf([1, 2, 3, 3])]);
  });
  test('interpolate bilinear (by scale and by size, align_corners both ways)', () => {
    check((x) => F.interpolate(x, { scaleFactor: 2, mode: 'bilinear' }), [leaf([1, 2, 2, 3])]);
    check((x) => F.interpolate(x, { size: [5, 4], mode: 'bilinear', alignCorners: true }), [leaf([1, 1, 3, 3])]);
  });
  test('interpolate nearest', () => {
    check((x) => F.interpolate(x, { scaleFactor: 2 }), [leaf([1, 2, 2, 2])]);
    check((x) => F.interpolate(x, { size: [3, 5], mode: 'nearest' }), [leaf([1, 1, 2, 3])]);
  });
  test('pad constant, reflect and replicate', () => {
    check((x) => F.pad(x, [1, 2, 0, 1], 'constant', 0.5), [leaf([1, 1, 2, 3])]);
    check((x) => F.pad(x, [1, 1, 2, 1], 'reflect'), [leaf([1, 2, 3, 3])]);
    check((x) => F.pad(x, [1, 0, 1, 2], 'replicate'), [leaf([1, 1, 2, 3])]);
  });
  test('max_pool2d on distinct values (no ties)', () => {
    // a permutation of 0..31 times 0.1: every window has a unique maximum, 0.1 ≫ eps
    const perm = [17, 3, 28, 9, 0, 22, 14, 31, 6, 19, 25, 1, 12, 30, 8, 21, 4, 27, 11, 16, 2, 24, 29, 7, 13, 20, 5, 26, 10, 18, 23, 15];
    check((x) => F.maxPool2d(x, 2), [fromValues(perm.map((v) => v * 0.1), [1, 2, 4, 4])]);
    check((x) => F.maxPool2d(x, 3, 1, 1), [fromValues(perm.map((v) => v * 0.1 - 1), [2, 1, 4, 4])]);
  });
  test('avg_pool2d and adaptive_avg_pool2d (uneven windows 5 → 3)', () => {
    check((x) => F.avgPool2d(x, 2), [leaf([1, 2, 4, 4])]);
    check((x) => F.avgPool2d(x, 3, 2, 1), [leaf([1, 1, 5, 5])]);
    check((x) => F.adaptiveAvgPool2d(x, 3), [leaf([1, 1, 5, 5])]);
    check((x) => F.adaptiveAvgPool2d(x, 1), [leaf([2, 2, 3, 3])]);
  });
});

describe('gradcheck: shape and indexing', () => {
  test('reshape, view, permute, transpose, flatten, expand, squeeze/unsqueeze', () => {
    check((x) => x.reshape([3, 4]), [leaf([2, 6])]);
    check((x) => x.view([6, 2]).t(), [leaf([3, 4])]);
    check((x) => x.permute([2, 0, 1]), [leaf([2, 3, 2])]);
    check((x) => x.transpose(0, 2), [leaf([2, 3, 2])]);
    check((x) => x.flatten(1), [leaf([2, 2, 3])]);
    check((x) => x.expand([3, 2, 4]), [leaf([2, 1])]); // grad sums over the broadcast copies
    check((x) => x.unsqueeze(1).squeeze(1).unflatten(1, [2, 2]), [leaf([2, 4])]);
    check((x) => x.repeat([2, 3]), [leaf([2, 2])]);
  });
  test('cat, stack, split and chunk', () => {
    check((a, b) => T.cat([a, b], 1), [leaf([2, 2]), leaf([2, 3])]);
    check((a, b) => T.stack([a, b], 1), [leaf([2, 3]), leaf([2, 3])]);
    check((x) => {
      const [a, b] = x.split([1, 3], 1);
      return a!.mul(b!); // (2,1)·(2,3)
    }, [leaf([2, 4])]);
    check((x) => {
      const [a, b, c] = x.chunk(3, 0);
      return a!.mul(b!).add(c!.exp());
    }, [leaf([6, 2])]);
  });
  test('slice (with step and negative start), narrow, select', () => {
    check((x) => x.slice(1, 1, null, 2), [leaf([2, 6])]);
    check((x) => x.slice(0, -2).mul(x.slice(0, 0, 2)), [leaf([5, 2])]);
    check((x) => x.narrow(1, 1, 2).add(x.select(1, 0).unsqueeze(1)), [leaf([3, 4])]);
  });
  test('index_select and gather with repeated indices (grads accumulate)', () => {
    check((x) => x.indexSelect(1, i64([2, 0, 2])), [leaf([2, 3])]);
    check((x) => x.gather(1, i64([[0, 0, 1], [2, 1, 2]])), [leaf([2, 3])]);
    check((x) => x.index([i64([1, 1, 0])]), [leaf([2, 3])]);
  });
  test('embedding: gradient wrt the weight', () => {
    const idx = i64([[0, 2], [2, 1]]);
    check((w) => F.embedding(w, idx), [leaf([4, 3])]);
  });
  test('where and maskedFill pass gradients through the chosen entries', () => {
    const mask = T.tensor([true, false, true, false]);
    check((a, b) => T.where(mask, a, b), [leaf([4]), leaf([4])]);
    check((a) => a.maskedFill(mask, 0), [leaf([4])]);
  });
});

describe('gradcheck: reductions', () => {
  test('sum and mean over all and along dims', () => {
    check((x) => x.sum(), [leaf([2, 3])]);
    check((x) => x.sum(1, true), [leaf([2, 3])]);
    check((x) => x.mean(), [leaf([2, 3])]);
    check((x) => x.mean([0, 2]), [leaf([2, 3, 2])]);
  });
  test('var and std (correction 1 and 0)', () => {
    check((x) => x.var(), [leaf([2, 3])]);
    check((x) => x.var(1, { correction: 0, keepdim: true }), [leaf([2, 4])]);
    check((x) => x.std(0), [leaf([3, 2])]);
  });
  test('logsumexp', () => {
    check((x) => x.logsumexp(1), [leaf([3, 4])]);
    check((x) => x.logsumexp([0, 1]), [leaf([2, 3])]);
  });
  test('amax and maxDim values on distinct values', () => {
    check((x) => x.amax(1), [fromValues([0.1, 0.9, 0.5, -0.3, -0.1, -0.7], [2, 3])]);
    check((x) => x.maxDim(0).values, [fromValues([0.1, 0.9, 0.5, -0.3, -0.1, -0.7], [2, 3])]);
  });
  test('norm and cumsum', () => {
    check((x) => x.norm(), [leaf([5])]);
    check((x) => x.cumsum(1), [leaf([2, 4])]);
  });
});

describe('gradcheck: losses', () => {
  test('cross_entropy with class indices (input grad), reductions mean/sum/none', () => {
    const t = i64([2, 0, 1]);
    check((x) => F.crossEntropy(x, t), [leaf([3, 4])]);
    check((x) => F.crossEntropy(x, t, { reduction: 'sum' }), [leaf([3, 4])]);
    check((x) => F.crossEntropy(x, t, { reduction: 'none' }), [leaf([3, 4])]);
  });
  test('cross_entropy with label smoothing 0.1', () => {
    const t = i64([2, 0, 1]);
    check((x) => F.crossEntropy(x, t, { labelSmoothing: 0.1 }), [leaf([3, 4])]);
  });
  test('cross_entropy with soft targets (grads wrt logits and target)', () => {
    const p = T.tensor([0.1, 0.2, 0.7, 0.5, 0.25, 0.25], { shape: [2, 3], dtype: 'float64' });
    check((x) => F.crossEntropy(x, p), [leaf([2, 3])]);
    check((x, q) => F.crossEntropy(x, q), [leaf([2, 3]), fromValues([0.1, 0.2, 0.7, 0.5, 0.25, 0.25], [2, 3])]);
  });
  test('nll_loss on log_softmax', () => {
    check((x) => F.nllLoss(F.logSoftmax(x, 1), i64([1, 0])), [leaf([2, 3])]);
  });
  test('kl_div with batchmean and with log targets (grads wrt input and target)', () => {
    const target = T.tensor([0.2, 0.3, 0.5, 0.6, 0.3, 0.1], { shape: [2, 3], dtype: 'float64' });
    check((x) => F.klDiv(F.logSoftmax(x, 1), target, 'batchmean'), [leaf([2, 3])]);
    check((x, y) => F.klDiv(F.logSoftmax(x, 1), F.logSoftmax(y, 1), 'batchmean', true), [leaf([2, 3]), leaf([2, 3])]);
    check((x, y) => F.klDiv(x, y, 'mean'), [leaf([2, 3]), leaf([2, 3], 0.1, 1)]);
  });
  test('mse, l1 and smooth_l1 with differences away from the kinks', () => {
    // targets are 0, so the differences are the inputs: kinks of l1 at 0, of smooth_l1 at 0 and ±β
    const zero = T.zeros([6], { dtype: 'float64' });
    check((a, b) => F.mseLoss(a, b), [leaf([6]), leaf([6])]);
    check((a) => F.l1Loss(a, zero), [leafAway([6], [0])]);
    check((a) => F.l1Loss(a, zero, 'sum'), [leafAway([6], [0])]);
    check((a) => F.smoothL1Loss(a, zero), [leafAway([6], [-1, 0, 1])]);
    check((a) => F.smoothL1Loss(a, zero, 'none', 0.5), [leafAway([6], [-0.5, 0, 0.5])]);
  });
  test('cosine_similarity (both inputs)', () => {
    check((a, b) => F.cosineSimilarity(a, b), [leaf([3, 4]), leaf([3, 4])]);
    check((a, b) => F.cosineSimilarity(a, b, 0), [leaf([4, 2]), leaf([4, 2])]);
  });
  test('binary_cross_entropy_with_logits', () => {
    const y = T.tensor([1, 0, 0.3], { dtype: 'float64' });
    check((x) => F.binaryCrossEntropyWithLogits(x, y), [leaf([3])]);
  });
});

describe('gradcheck: composite blocks', () => {
  test('an attention head: softmax(q kᵀ/√d) v', () => {
    check((q, k, v) => q.matmul(k.transpose(-2, -1)).div(2).softmax(-1).matmul(v), [leaf([1, 3, 4]), leaf([1, 3, 4]), leaf([1, 3, 2])]);
  });
  test('an MLP block: linear → gelu → linear with a residual', () => {
    check((x, w1, w2) => F.linear(F.linear(x, w1).gelu(), w2).add(x), [leaf([2, 3]), leaf([4, 3]), leaf([3, 4])]);
  });
});

describe('autograd behaviour', () => {
  test('backward with an explicit gradient: d(x²)·g = 2x·g; retainGraph allows a second backward that accumulates', () => {
    const x = T.tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const y = x.mul(x);
    const g = T.tensor([1, 0.5, 2], { dtype: 'float64' });
    y.backward(g, { retainGraph: true });
    close(x.grad!, [2, 2, 12]); // 2·[1,2,3]·[1,0.5,2]
    y.backward(g);
    close(x.grad!, [4, 4, 24]);
  });

  test('a second backward without retainGraph throws (the graph was freed)', () => {
    const x = T.tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const y = x.exp().sum();
    y.backward();
    assert.throws(() => y.backward(), /backward|second time|freed/i);
  });

  test('backward of a non-scalar without a gradient throws', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    assert.throws(() => x.mul(2).backward(), /scalar/);
  });

  test('grad() with createGraph gives a differentiable first derivative: d²/dx² x³ = 6x', () => {
    const x = T.tensor([1.5, -2], { dtype: 'float64', requiresGrad: true });
    const y = x.pow(3).sum();
    const [g] = T.grad(y, [x], { createGraph: true });
    close(g!, [6.75, 12]); // 3x²
    assert.equal(g!.requiresGrad, true);
    const [g2] = T.grad(g!.sum(), [x]);
    close(g2!, [9, -12]); // 6x
    assert.equal(x.grad, null); // grad() does not accumulate into .grad
  });

  test('double backward of tanh, gelu and layer_norm passes gradcheck', () => {
    // gradcheck evaluates fn under noGrad; enableGrad lets the inner grad() build its graph
    const d = (f: (x: Tensor) => Tensor) => (x: Tensor): Tensor => T.enableGrad(() => T.grad(f(x).mul(f(x)).sum(), [x], { createGraph: true })[0]!);
    check(d((x) => x.tanh()), [leaf([4])]);
    check(d((x) => x.gelu()), [leaf([4])]);
    check(d((x) => F.layerNorm(x, [3])), [leaf([2, 3])]);
  });

  test('grad() with gradOutputs weights the outputs; allowUnused returns null for an unused input', () => {
    const x = T.tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const z = T.tensor([5], { dtype: 'float64', requiresGrad: true });
    const y = x.mul(3);
    const [gx, gz] = T.grad(y, [x, z], { gradOutputs: [T.tensor([1, -1], { dtype: 'float64' })], allowUnused: true });
    close(gx!, [3, -3]);
    assert.equal(gz, null);
    assert.throws(() => T.grad(x.mul(2).sum(), [x, z]), /not have been used|unused/i);
  });

  test('gradients accumulate across two backward calls and reset when grad is set to null', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    x.mul(3).sum().backward();
    close(x.grad!, [3, 3]);
    x.mul(x).sum().backward(); // + 2x
    close(x.grad!, [5, 7]);
    x.grad = null;
    assert.equal(x.grad, null);
    x.mul(2).sum().backward();
    close(x.grad!, [2, 2]);
  });

  test('T.backward over several roots sums their gradients', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    T.backward([x.sum(), x.mul(x).sum()]);
    close(x.grad!, [3, 5]); // 1 + 2x
  });

  test('detach stops gradients: d/dx (detach(x)·2 + x) = 1', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    const d = x.detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.gradFn, null);
    d.mul(2).add(x).sum().backward();
    close(x.grad!, [1, 1]);
  });

  test('retainGrad keeps the gradient of a non-leaf; leaves report isLeaf', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    const h = x.mul(2).retainGrad();
    assert.equal(x.isLeaf, true);
    assert.equal(h.isLeaf, false);
    h.pow(2).sum().backward();
    close(h.grad!, [4, 8]); // 2h
    close(x.grad!, [8, 16]); // 2h·2
  });

  test('noGrad records nothing: no gradFn, no requiresGrad; enableGrad re-enables inside', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    assert.equal(x.mul(2).gradFn !== null, true);
    const y = T.noGrad(() => {
      assert.equal(T.isGradEnabled(), false);
      const inner = T.enableGrad(() => x.mul(2));
      assert.ok(inner.gradFn !== null, 'enableGrad inside noGrad records');
      return x.mul(2);
    });
    assert.equal(T.isGradEnabled(), true);
    assert.equal(y.gradFn, null);
    assert.equal(y.requiresGrad, false);
    assert.throws(() => y.sum().backward(), /does not require grad/);
  });

  test('noGrad restores grad mode even when the callback throws', () => {
    assert.throws(() => T.noGrad(() => {
      throw new Error('inside');
    }), /inside/);
    assert.equal(T.isGradEnabled(), true);
  });

  test('inferenceMode: tensors made inside report isInference, those outside do not', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    const y = T.inferenceMode(() => {
      assert.equal(native.isInferenceMode(), true);
      return x.mul(2);
    });
    assert.equal(native.isInferenceMode(), false);
    assert.equal(native.isInference(y.handle), true);
    assert.equal(T.callOp('aten::is_inference', null, [y]), true);
    assert.equal(native.isInference(x.handle), false);
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.deepEqual(y.toArray(), [2, 4]);
  });

  test('gradFn names the backward node of the last operator', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    assert.equal(x.gradFn, null);
    assert.match(x.mul(2).gradFn ?? '', /MulBackward/);
    assert.match(x.exp().gradFn ?? '', /ExpBackward/);
  });
});

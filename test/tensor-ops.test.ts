// Operator results against values worked out by hand. Small tensors; the arithmetic is in comments.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { F, type Tensor } from '../src/index.js';

// ---------------------------------------------------------------------------------------------
// helpers

function close(actual: Tensor | ArrayLike<number> | number, expected: readonly number[] | number, tol = 1e-6, what = ''): void {
  const a = typeof actual === 'number' ? [actual] : actual instanceof T.Tensor ? actual.toArray() : Array.from(actual);
  const e = typeof expected === 'number' ? [expected] : [...expected];
  assert.equal(a.length, e.length, `${what}: ${a.length} values, expected ${e.length}`);
  for (let i = 0; i < e.length; i++) {
    const ok = Math.abs(a[i]! - e[i]!) <= tol * Math.max(1, Math.abs(e[i]!));
    assert.ok(ok, `${what}[${i}]: got ${a[i]}, expected ${e[i]} (tol ${tol}); all: [${a.join(', ')}]`);
  }
}

function exact(t: Tensor, expected: readonly number[], shape?: readonly number[]): void {
  if (shape) assert.deepEqual(t.shape, [...shape]);
  assert.deepEqual(t.toArray(), [...expected]);
}

const f64 = (v: unknown[] | number, shape?: number[]): Tensor => T.tensor(v as number[], { dtype: 'float64', ...(shape ? { shape } : {}) });
const i64 = (v: unknown[] | number): Tensor => T.tensor(v as number[], { dtype: 'int64' });

// ---------------------------------------------------------------------------------------------

describe('elementwise arithmetic', () => {
  test('add broadcasts a column against a row: [[1],[2]] + [10,20,30]', () => {
    const r = T.tensor([[1], [2]]).add(T.tensor([10, 20, 30]));
    exact(r, [11, 21, 31, 12, 22, 32], [2, 3]);
  });

  test('add with alpha computes a + alpha·b: [1,2] + 3·[1,1] = [4,5]', () => {
    exact(T.tensor([1, 2]).add(T.tensor([1, 1]), 3), [4, 5]);
  });

  test('sub with a scalar and with alpha: [5,7] − 2 = [3,5]; [5,7] − 2·[1,2] = [3,3]', () => {
    exact(T.tensor([5, 7]).sub(2), [3, 5]);
    exact(T.tensor([5, 7]).sub(T.tensor([1, 2]), 2), [3, 3]);
  });

  test('rsub is scalar − tensor: 1 − [0.25, 2] = [0.75, −1]', () => {
    exact(T.tensor([0.25, 2]).rsub(1), [0.75, -1]);
  });

  test('mul broadcasts over the leading dim and with scalars', () => {
    // [[1,2],[3,4]] * [10,100] = [[10,200],[30,400]]; times 0.5 = [[5,100],[15,200]]
    const r = T.tensor([[1, 2], [3, 4]]).mul(T.tensor([10, 100]));
    exact(r, [10, 200, 30, 400]);
    exact(r.mul(0.5), [5, 100, 15, 200]);
  });

  test('div is true division, also for int tensors; rounding modes floor and trunc', () => {
    const q = i64([1, 2, 3]).div(2); // 1/2, 2/2, 3/2
    assert.equal(q.dtype, 'float32');
    exact(q, [0.5, 1, 1.5]);
    exact(T.tensor([[2, 4], [6, 8]]).div(T.tensor([2, 4])), [1, 1, 3, 2]);
    exact(T.tensor([-3, 3]).div(2, 'floor'), [-2, 1]); // floor(−1.5) = −2
    exact(T.tensor([-3, 3]).div(2, 'trunc'), [-1, 1]); // trunc(−1.5) = −1
  });

  test('int64 tensor + integer scalar stays int64; + 1.5 promotes to float32', () => {
    const a = i64([1, 2, 3]);
    const b = a.add(1);
    assert.equal(b.dtype, 'int64');
    exact(b, [2, 3, 4]);
    assert.equal(a.mul(3).dtype, 'int64');
    const c = a.add(1.5);
    assert.equal(c.dtype, 'float32');
    exact(c, [2.5, 3.5, 4.5]);
  });

  test('pow: [1,2,3]² = [1,4,9]; 4^0.5 = 2; [2,3]^[3,2] = [8,9]', () => {
    exact(T.tensor([1, 2, 3]).pow(2), [1, 4, 9]);
    exact(T.tensor([4, 9]).pow(0.5), [2, 3]);
    exact(T.tensor([2, 3]).pow(T.tensor([3, 2])), [8, 9]);
  });

  test('exp, log, sqrt, abs, neg at hand-checked points', () => {
    close(f64([0, 1, -1]).exp(), [1, Math.E, 1 / Math.E], 1e-12);
    close(f64([1, Math.E, 100]).log(), [0, 1, Math.log(100)], 1e-12);
    close(f64([4, 2, 0]).sqrt(), [2, Math.SQRT2, 0], 1e-12);
    exact(T.tensor([-2, 0, 3]).abs(), [2, 0, 3]);
    exact(T.tensor([-2, 0, 3]).neg(), [2, -0, -3]);
  });
});

describe('activations', () => {
  test('tanh and sigmoid at 0, 0.5 and 2', () => {
    // tanh(0.5) = (e − 1)/(e + 1) with e = e^1 = 0.46211715726000974
    close(f64([0, 0.5, -2]).tanh(), [0, 0.46211715726000974, -0.9640275800758169], 1e-12);
    // sigmoid(2) = 1/(1 + e^−2) = 0.8807970779778823
    close(f64([0, 2, -2]).sigmoid(), [0.5, 0.8807970779778823, 0.11920292202211769], 1e-12);
  });

  test('relu zeroes negatives; leaky_relu scales them by the slope', () => {
    exact(T.tensor([-2, 0, 3]).relu(), [0, 0, 3]);
    close(T.tensor([-2, 0, 3]).leakyRelu(0.1), [-0.2, 0, 3], 1e-7);
    close(T.tensor([-100]).leakyRelu(), [-1], 1e-7); // default slope 0.01
  });

  test('gelu exact erf form: gelu(1) = Φ(1) = 0.8413447460685429, gelu(−1) = −Φ(−1)', () => {
    close(f64([1, -1, 0]).gelu(), [0.8413447460685429, -0.15865525393145707, 0], 1e-12);
    close(F.gelu(f64([2])), [2 * 0.9772498680518208], 1e-12);
  });

  test('gelu tanh approximation: 0.5(1 + tanh(√(2/π)(1 + 0.044715))) = 0.8411919906082768', () => {
    const expected = 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (1 + 0.044715)));
    close(f64([1]).gelu('tanh'), [expected], 1e-12);
    assert.ok(Math.abs(expected - 0.8413447460685429) > 1e-4); // the two forms really differ
  });

  test('softmax rows sum to one: softmax([1,2,3]) = e^i / (e + e² + e³)', () => {
    const s = f64([[1, 2, 3], [0, 0, 0]]).softmax(1);
    const z = Math.E + Math.E ** 2 + Math.E ** 3;
    close(s, [Math.E / z, Math.E ** 2 / z, Math.E ** 3 / z, 1 / 3, 1 / 3, 1 / 3], 1e-12);
  });

  test('softmax along dim 0 normalises columns', () => {
    const s = f64([[0, 1], [0, 1]]).softmax(0);
    close(s, [0.5, 0.5, 0.5, 0.5], 1e-12);
  });

  test('log_softmax = x − logsumexp(x): lse([1,2,3]) = 3.4076059644443806', () => {
    const lse = 3.4076059644443806;
    close(F.logSoftmax(f64([[1, 2, 3]]), -1), [1 - lse, 2 - lse, 3 - lse], 1e-12);
  });
});

describe('normalisation', () => {
  test('layer_norm: [1,2,3,4] has mean 2.5, biased var 1.25; weight and bias apply after', () => {
    const x = f64([[1, 2, 3, 4]]);
    const s = Math.sqrt(1.25 + 1e-5);
    const n = [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s];
    close(F.layerNorm(x, [4]), n, 1e-10);
    const w = f64([1, 1, 2, 2]);
    const b = f64([0, 0, 0, 1]);
    close(F.layerNorm(x, [4], w, b), [n[0]!, n[1]!, 2 * n[2]!, 2 * n[3]! + 1], 1e-10);
  });

  test('batch_norm training: batch stats normalise; running stats update with momentum 0.1 and unbiased var', () => {
    // columns [1,3,5] and [2,6,10]: means 3 and 6; biased vars 8/3 and 32/3; unbiased vars 4 and 16
    const x = f64([[1, 2], [3, 6], [5, 10]]);
    const rm = f64([0, 0]);
    const rv = f64([1, 1]);
    const y = F.batchNorm(x, rm, rv, null, null, true, 0.1, 1e-5);
    const s0 = Math.sqrt(8 / 3 + 1e-5);
    const s1 = Math.sqrt(32 / 3 + 1e-5);
    close(y, [-2 / s0, -4 / s1, 0, 0, 2 / s0, 4 / s1], 1e-10);
    // running_mean = 0.9·0 + 0.1·[3,6] = [0.3,0.6]; running_var = 0.9·1 + 0.1·[4,16] = [1.3, 2.5]
    close(rm, [0.3, 0.6], 1e-12);
    close(rv, [1.3, 2.5], 1e-12);
  });

  test('batch_norm training applies weight and bias per channel (N, C, H, W)', () => {
    // channel 0 holds [0,2] (mean 1, biased var 1), channel 1 holds [4,4] (var 0)
    const x = f64([0, 4, 2, 4], [2, 2, 1, 1]);
    const y = F.batchNorm(x, null, null, f64([2, 3]), f64([10, -1]), true, 0.1, 1e-5);
    const s = Math.sqrt(1 + 1e-5);
    // n=0: [2·(−1/s) + 10, 3·0 − 1]; n=1: [2·(1/s) + 10, −1]
    close(y, [10 - 2 / s, -1, 10 + 2 / s, -1], 1e-10);
  });

  test('batch_norm eval uses the running stats and leaves them unchanged', () => {
    const x = f64([[1, 2], [3, 6]]);
    const rm = f64([1, 2]);
    const rv = f64([4, 0.25]);
    const y = F.batchNorm(x, rm, rv, f64([1, 2]), f64([0, 1]), false);
    // (x − rm)/√(rv + eps)·w + b: [0, 0·2+1], [2/√4.00001, 4/√0.25001·2 + 1]
    close(y, [0, 1, 2 / Math.sqrt(4 + 1e-5), (4 / Math.sqrt(0.25 + 1e-5)) * 2 + 1], 1e-10);
    close(rm, [1, 2], 0);
    close(rv, [4, 0.25], 0);
  });
});

describe('convolution, resampling and padding', () => {
  const x33 = (): Tensor => T.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], { shape: [1, 1, 3, 3] });
  const k = (): Tensor => T.tensor([1, 2, 3, 4], { shape: [1, 1, 2, 2] });

  test('conv2d 3×3 input, 2×2 kernel [[1,2],[3,4]], stride 1: out[i][j] = x[i][j] + 2x[i][j+1] + 3x[i+1][j] + 4x[i+1][j+1]', () => {
    // (0,0) 1+4+12+20 = 37; (0,1) 2+6+15+24 = 47; (1,0) 4+10+21+32 = 67; (1,1) 5+12+24+36 = 77
    exact(F.conv2d(x33(), k()), [37, 47, 67, 77], [1, 1, 2, 2]);
    exact(F.conv2d(x33(), k(), T.tensor([1])), [38, 48, 68, 78]);
  });

  test('conv2d stride 2, padding 1: windows at padded (0,0),(0,2),(2,0),(2,2)', () => {
    // (0,0): only x00 under weight 4 → 4; (0,2): x01·3 + x02·4 = 6+12 = 18;
    // (2,0): x10·2 + x20·4 = 8+28 = 36; (2,2): 5+12+24+36 = 77
    exact(F.conv2d(x33(), k(), null, { stride: 2, padding: 1 }), [4, 18, 36, 77], [1, 1, 2, 2]);
  });

  test('conv2d sums over input channels and produces one map per output channel', () => {
    // two input channels of ones (2×2); weights ones for out 0, and [1,0,0,0]/[0,0,0,-1] for out 1
    const x = T.ones([1, 2, 2, 2]);
    const w = T.tensor([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, -1], { shape: [2, 2, 2, 2] });
    exact(F.conv2d(x, w), [8, 0], [1, 2, 1, 1]);
  });

  test('conv_transpose2d stride 1: each input pixel stamps x·w into a 3×3 output', () => {
    // x = [[1,2],[3,4]], w = [[1,2],[3,4]]:
    // row0 [1, 2+2, 4]; row1 [3+3, 4+6+6+4, 8+8]; row2 [9, 12+12, 16]
    const x = T.tensor([1, 2, 3, 4], { shape: [1, 1, 2, 2] });
    exact(F.convTranspose2d(x, k()), [1, 4, 4, 6, 20, 16, 9, 24, 16], [1, 1, 3, 3]);
  });

  test('conv_transpose2d stride 2: non-overlapping 2×2 blocks x[i][j]·w', () => {
    const x = T.tensor([1, 2, 3, 4], { shape: [1, 1, 2, 2] });
    exact(F.convTranspose2d(x, k(), null, { stride: 2 }), [1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16], [1, 1, 4, 4]);
  });

  test('interpolate nearest ×2 repeats each pixel in a 2×2 block', () => {
    const x = T.tensor([1, 2, 3, 4], { shape: [1, 1, 2, 2] });
    exact(F.interpolate(x, { scaleFactor: 2 }), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], [1, 1, 4, 4]);
    exact(F.interpolate(x, { size: [2, 4], mode: 'nearest' }), [1, 1, 2, 2, 3, 3, 4, 4], [1, 1, 2, 4]);
  });

  test('interpolate bilinear 2→4 (align_corners false): source = (dst + 0.5)/2 − 0.5, clamped', () => {
    // 1-D weights: dst0 → x0; dst1 (0.25) → 0.75x0 + 0.25x1; dst2 (0.75) → 0.25x0 + 0.75x1; dst3 → x1
    // rows [1,2] → [1,1.25,1.75,2] and [3,4] → [3,3.25,3.75,4]; then the same weights vertically
    const x = T.tensor([1, 2, 3, 4], { shape: [1, 1, 2, 2] });
    const y = F.interpolate(x, { size: [4, 4], mode: 'bilinear' });
    close(y, [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4], 1e-6);
  });

  test('interpolate bilinear 2→3 with align_corners: corners kept, midpoints averaged', () => {
    const x = T.tensor([1, 2, 3, 4], { shape: [1, 1, 2, 2] });
    close(F.interpolate(x, { size: [3, 3], mode: 'bilinear', alignCorners: true }), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4], 1e-6);
  });

  test('interpolate requires exactly one of size and scaleFactor', () => {
    const x = T.ones([1, 1, 2, 2]);
    assert.throws(() => F.interpolate(x, {}), /exactly one/);
    assert.throws(() => F.interpolate(x, { size: [4, 4], scaleFactor: 2 }), /exactly one/);
  });

  test('pad constant: [1,2] padded (1 left, 2 right) with 9 = [9,1,2,9,9]; 2-D pads last two dims', () => {
    exact(F.pad(T.tensor([1, 2]), [1, 2], 'constant', 9), [9, 1, 2, 9, 9]);
    exact(F.pad(T.tensor([[1]]), [0, 1, 1, 0]), [0, 0, 1, 0], [2, 2]);
  });

  test('pad reflect and replicate by 1 around a 3×3 image', () => {
    exact(F.pad(x33(), [1, 1, 1, 1], 'reflect'), [
      5, 4, 5, 6, 5,
      2, 1, 2, 3, 2,
      5, 4, 5, 6, 5,
      8, 7, 8, 9, 8,
      5, 4, 5, 6, 5,
    ], [1, 1, 5, 5]);
    exact(F.pad(x33(), [1, 1, 1, 1], 'replicate'), [
      1, 1, 2, 3, 3,
      1, 1, 2, 3, 3,
      4, 4, 5, 6, 6,
      7, 7, 8, 9, 9,
      7, 7, 8, 9, 9,
    ], [1, 1, 5, 5]);
  });

  test('pools: max and average over 2×2 windows; adaptive average to 1×1 is the mean', () => {
    const x = T.arange(16, undefined, 1, { dtype: 'float32' }).reshape([1, 1, 4, 4]);
    // windows: [0,1,4,5] [2,3,6,7] [8,9,12,13] [10,11,14,15]
    exact(F.maxPool2d(x, 2), [5, 7, 13, 15], [1, 1, 2, 2]);
    exact(F.avgPool2d(x, 2), [2.5, 4.5, 10.5, 12.5], [1, 1, 2, 2]);
    exact(F.adaptiveAvgPool2d(x, 1), [7.5], [1, 1, 1, 1]);
    exact(F.adaptiveAvgPool2d(x, 2), [2.5, 4.5, 10.5, 12.5]);
  });

  test('linear: y = x Wᵀ + b', () => {
    // x = [1,2]; W = [[1,0],[1,1],[0,2]]; xWᵀ = [1, 3, 4]; + b [0.5, 0, -1]
    const y = F.linear(T.tensor([[1, 2]]), T.tensor([[1, 0], [1, 1], [0, 2]]), T.tensor([0.5, 0, -1]));
    exact(y, [1.5, 3, 3], [1, 3]);
  });

  test('embedding picks rows of the weight', () => {
    const w = T.tensor([[0, 0], [1, 1], [2, 4]]);
    exact(F.embedding(w, i64([[2, 0], [1, 1]])), [2, 4, 0, 0, 1, 1, 1, 1], [2, 2, 2]);
  });
});

describe('shape operations', () => {
  const a6 = (): Tensor => T.arange(6); // int64 0..5

  test('reshape and view with −1 infer a dimension', () => {
    exact(a6().reshape([2, -1]), [0, 1, 2, 3, 4, 5], [2, 3]);
    exact(a6().view([3, 2]), [0, 1, 2, 3, 4, 5], [3, 2]);
  });

  test('permute and transpose reorder elements; t() transposes 2-D', () => {
    const x = a6().reshape([2, 3]);
    exact(x.transpose(0, 1), [0, 3, 1, 4, 2, 5], [3, 2]);
    exact(x.t(), [0, 3, 1, 4, 2, 5], [3, 2]);
    const y = T.arange(24).reshape([2, 3, 4]).permute([2, 0, 1]);
    assert.deepEqual(y.shape, [4, 2, 3]);
    // y[i][j][k] = x[j][k][i] = 12j + 4k + i; y[1] = [[1,5,9],[13,17,21]]
    exact(y.select(0, 1), [1, 5, 9, 13, 17, 21]);
  });

  test('flatten collapses a range of dims; unflatten restores it', () => {
    const x = T.zeros([2, 3, 4, 5]);
    assert.deepEqual(x.flatten().shape, [120]);
    assert.deepEqual(x.flatten(1).shape, [2, 60]);
    assert.deepEqual(x.flatten(1, 2).shape, [2, 12, 5]);
    assert.deepEqual(x.flatten(1, 2).unflatten(1, [3, 4]).shape, [2, 3, 4, 5]);
  });

  test('squeeze removes size-1 dims (all or one); unsqueeze inserts one, negative dims count from the end', () => {
    const x = T.zeros([1, 3, 1, 2]);
    assert.deepEqual(x.squeeze().shape, [3, 2]);
    assert.deepEqual(x.squeeze(2).shape, [1, 3, 2]);
    assert.deepEqual(x.squeeze(1).shape, [1, 3, 1, 2]); // size 3: unchanged
    assert.deepEqual(T.zeros([3]).unsqueeze(0).shape, [1, 3]);
    assert.deepEqual(T.zeros([3]).unsqueeze(-1).shape, [3, 1]);
  });

  test('expand repeats size-1 dims without copying; repeat tiles', () => {
    exact(T.tensor([[1], [2]]).expand([2, 3]), [1, 1, 1, 2, 2, 2], [2, 3]);
    exact(T.tensor([1, 2]).expand([2, -1]), [1, 2, 1, 2], [2, 2]);
    exact(T.tensor([1, 2]).repeat([2]), [1, 2, 1, 2]);
  });

  test('cat joins along a dim, stack adds a new one', () => {
    const a = T.tensor([[1, 2]]);
    const b = T.tensor([[3, 4]]);
    exact(T.cat([a, b], 0), [1, 2, 3, 4], [2, 2]);
    exact(T.cat([a, b], 1), [1, 2, 3, 4], [1, 4]);
    exact(T.stack([a, b], 0), [1, 2, 3, 4], [2, 1, 2]);
    exact(T.stack([a, b], 2), [1, 3, 2, 4], [1, 2, 2]);
  });

  test('split by size leaves a short last piece; split by sizes; chunk', () => {
    const p = T.arange(5).split(2);
    assert.equal(p.length, 3);
    exact(p[0]!, [0, 1]);
    exact(p[1]!, [2, 3]);
    exact(p[2]!, [4]);
    const q = T.arange(6).reshape([2, 3]).split([1, 2], 1);
    exact(q[0]!, [0, 3], [2, 1]);
    exact(q[1]!, [1, 2, 4, 5], [2, 2]);
    const c = T.arange(6).chunk(3);
    assert.deepEqual(c.map((t) => t.toArray()), [[0, 1], [2, 3], [4, 5]]);
    assert.deepEqual(T.arange(4).reshape([2, 2]).unbind(1).map((t) => t.toArray()), [[0, 2], [1, 3]]);
  });

  test('slice with negative start/end and with a step', () => {
    const x = T.arange(10);
    exact(x.slice(0, -3), [7, 8, 9]);
    exact(x.slice(0, 1, -1, 3), [1, 4, 7]); // [1, 9) step 3 → 1, 4, 7
    exact(x.slice(0, null, 4), [0, 1, 2, 3]);
    exact(x.narrow(0, 2, 3), [2, 3, 4]);
    const m = T.arange(12).reshape([3, 4]);
    exact(m.slice(1, 1, null, 2), [1, 3, 5, 7, 9, 11], [3, 2]);
  });

  test('slice is a view: writing into it changes the base', () => {
    const x = T.zeros([4]);
    x.slice(0, 1, 3).fill_(7);
    exact(x, [0, 7, 7, 0]);
  });

  test('select removes the dim; negative index counts from the end', () => {
    const x = T.arange(6).reshape([2, 3]);
    exact(x.select(1, -1), [2, 5], [2]);
    exact(x.select(0, 1), [3, 4, 5], [3]);
  });

  test('index_select, gather, scatter and scatter_add', () => {
    const x = T.arange(6).reshape([2, 3]); // [[0,1,2],[3,4,5]]
    exact(x.indexSelect(1, i64([2, 0])), [2, 0, 5, 3], [2, 2]);
    // gather dim 1: out[i][j] = x[i][idx[i][j]]
    exact(T.tensor([[1, 2], [3, 4]]).gather(1, i64([[0, 0], [1, 0]])), [1, 1, 4, 3]);
    // scatter dim 1: out[i][idx[i][j]] = src
    exact(T.zeros([2, 3]).scatter(1, i64([[1], [2]]), 9), [0, 9, 0, 0, 0, 9]);
    exact(T.zeros([2, 3]).scatter(1, i64([[0], [1]]), T.tensor([[5], [6]])), [5, 0, 0, 0, 6, 0]);
    // scatter_add accumulates duplicates: both 1s and the 2 go to column 0 of row 0 → 3
    exact(T.zeros([1, 2]).scatterAdd(1, i64([[0, 0, 1]]), T.tensor([[1, 2, 5]])), [3, 5]);
  });

  test('index with tensors: pairs of index tensors, null for a whole dim, and a bool mask', () => {
    const x = T.arange(6).reshape([2, 3]);
    exact(x.index([i64([1, 0]), i64([2, 2])]), [5, 2]); // x[1][2], x[0][2]
    exact(x.index([null, i64([0, 2])]), [0, 2, 3, 5], [2, 2]);
    exact(x.index([x.gt(3)]), [4, 5]);
  });

  test('where picks from a where the condition holds, else b (tensor or scalar)', () => {
    const x = T.tensor([1, 2, 3, 4]);
    exact(T.where(x.gt(2), x, T.tensor([0, 0, 0, 0])), [0, 0, 3, 4]);
    exact(T.where(x.gt(2), x, -1), [-1, -1, 3, 4]);
    exact(T.where(x.gt(2), 10, x), [1, 2, 10, 10]);
    exact(T.where(x.gt(2), 1, 0), [0, 0, 1, 1]);
    exact(x.maskedFill(x.lt(2), 5), [5, 2, 3, 4]);
  });

  test('clamp to [−1, 1]; one-sided clamps', () => {
    exact(T.tensor([-2, 0.5, 3]).clamp(-1, 1), [-1, 0.5, 1]);
    exact(T.tensor([-2, 0.5, 3]).clampMin(0), [0, 0.5, 3]);
    exact(T.tensor([-2, 0.5, 3]).clampMax(0), [-2, 0, 0]);
  });

  test('cumsum, roll and flip', () => {
    exact(T.tensor([1, 2, 3, 4]).cumsum(0), [1, 3, 6, 10]);
    exact(T.tensor([[1, 2], [3, 4]]).cumsum(1), [1, 3, 3, 7]);
    exact(T.tensor([1, 2, 3, 4, 5]).roll(2, 0), [4, 5, 1, 2, 3]);
    exact(T.tensor([1, 2, 3, 4, 5]).roll(-1, 0), [2, 3, 4, 5, 1]);
    exact(T.tensor([[1, 2], [3, 4]]).roll([1, 1], [0, 1]), [4, 3, 2, 1]);
    exact(T.tensor([[1, 2], [3, 4]]).flip(0), [3, 4, 1, 2]);
    exact(T.tensor([[1, 2], [3, 4]]).flip([0, 1]), [4, 3, 2, 1]);
  });

  test('one_hot of [0,2,1] with 3 classes is int64 rows of the identity', () => {
    const o = i64([0, 2, 1]).oneHot(3);
    assert.equal(o.dtype, 'int64');
    exact(o, [1, 0, 0, 0, 0, 1, 0, 1, 0], [3, 3]);
  });

  test('matmul, mm and bmm by hand', () => {
    // [[1,2],[3,4]]·[[5],[6]] = [[17],[39]]
    exact(T.tensor([[1, 2], [3, 4]]).matmul(T.tensor([[5], [6]])), [17, 39], [2, 1]);
    exact(T.tensor([[1, 2], [3, 4]]).mm(T.eye(2)), [1, 2, 3, 4]);
    const b = T.stack([T.eye(2), T.tensor([[0, 1], [1, 0]])]);
    exact(b.bmm(T.tensor([1, 2, 3, 4], { shape: [2, 2, 1] })), [1, 2, 4, 3], [2, 2, 1]);
  });
});

describe('reductions', () => {
  const x = (): Tensor => f64([[1, 2, 3], [4, 5, 6]]);

  test('sum over all, over a dim, and with keepdim', () => {
    close(x().sum(), 21, 0);
    exact(x().sum(0), [5, 7, 9], [3]);
    exact(x().sum(1, true), [6, 15], [2, 1]);
    exact(x().sum([0, 1]), [21], []);
  });

  test('mean over all and along dim 1', () => {
    close(x().mean(), 3.5, 0);
    exact(x().mean(1), [2, 5]);
    exact(x().mean(0, true), [2.5, 3.5, 4.5], [1, 3]);
  });

  test('var: Σ(x − 3.5)² = 17.5 over 1..6 → 17.5/5 = 3.5 (correction 1) and 17.5/6 (correction 0)', () => {
    close(x().var(), 3.5, 1e-12);
    close(x().var(undefined, { correction: 0 }), 17.5 / 6, 1e-12);
    close(x().var(1), [1, 1], 1e-12); // rows [1,2,3]: Σd² = 2, /2
    close(x().var(1, { correction: 0, keepdim: true }), [2 / 3, 2 / 3], 1e-12);
    assert.deepEqual(x().var(1, { keepdim: true }).shape, [2, 1]);
  });

  test('std is the square root of var: √3.5 and √(17.5/6)', () => {
    close(x().std(), Math.sqrt(3.5), 1e-12);
    close(x().std(undefined, { correction: 0 }), Math.sqrt(17.5 / 6), 1e-12);
    close(x().std(0), [Math.SQRT2 * 1.5, Math.SQRT2 * 1.5, Math.SQRT2 * 1.5], 1e-12); // columns [a, a+3]: var 4.5
  });

  test('max/min over all; maxDim and minDim give values and indices; argmax', () => {
    const y = T.tensor([[3, 1, 2], [0, 5, 4]]);
    close(y.max(), 5, 0);
    close(y.min(), 0, 0);
    const m = y.maxDim(1);
    exact(m.values, [3, 5]);
    exact(m.indices, [0, 1]);
    assert.equal(m.indices.dtype, 'int64');
    const mk = y.maxDim(0, true);
    exact(mk.values, [3, 5, 4], [1, 3]);
    exact(mk.indices, [0, 1, 1], [1, 3]);
    const n = y.minDim(1);
    exact(n.values, [1, 0]);
    exact(n.indices, [1, 0]);
    close(y.argmax(), 4, 0); // flattened index of 5
    exact(y.argmax(1), [0, 1]);
    exact(y.argmax(0, true), [0, 1, 1], [1, 3]);
    exact(y.argmin(1), [1, 0]);
    exact(y.amax(0), [3, 5, 4]);
  });

  test('topk: largest two per row, and smallest one with largest=false', () => {
    const y = T.tensor([[3, 1, 2], [0, 5, 4]]);
    const t = y.topk(2, 1);
    exact(t.values, [3, 2, 5, 4], [2, 2]);
    exact(t.indices, [0, 2, 1, 2], [2, 2]);
    const s = y.topk(1, 1, false);
    exact(s.values, [1, 0], [2, 1]);
    exact(s.indices, [1, 0], [2, 1]);
    exact(y.sort(1).values, [1, 2, 3, 0, 4, 5]);
  });

  test('logsumexp: lse([1,2,3]) = 3 + log(1 + e⁻¹ + e⁻²) = 3.4076059644443806, with keepdim', () => {
    close(x().logsumexp(1), [3.4076059644443806, 6.4076059644443806], 1e-12);
    assert.deepEqual(x().logsumexp(1, true).shape, [2, 1]);
    close(x().logsumexp([0, 1]), [6 + Math.log(1 + Math.exp(-1) + Math.exp(-2) + Math.exp(-3) + Math.exp(-4) + Math.exp(-5))], 1e-12);
  });

  test('prod and norm: prod(1..6) = 720; ‖[3,4]‖₂ = 5, ‖[3,−4]‖₁ = 7', () => {
    close(x().prod(), 720, 0);
    close(T.tensor([3, 4]).norm(), 5, 1e-7);
    close(T.tensor([3, -4]).norm(1), 7, 1e-7);
    close(T.tensor([[3, 4], [6, 8]]).norm(2, 1), [5, 10], 1e-7);
  });
});

describe('comparisons', () => {
  test('comparisons with scalars and tensors give bool tensors', () => {
    const x = T.tensor([1, 2, 3]);
    const e = x.eq(2);
    assert.equal(e.dtype, 'bool');
    exact(e, [0, 1, 0]);
    exact(x.ne(2), [1, 0, 1]);
    exact(x.lt(2), [1, 0, 0]);
    exact(x.le(2), [1, 1, 0]);
    exact(x.gt(2), [0, 0, 1]);
    exact(x.ge(2), [0, 1, 1]);
    exact(x.eq(T.tensor([1, 0, 3])), [1, 0, 1]);
    exact(x.gt(1).logicalAnd(x.lt(3)), [0, 1, 0]);
    exact(x.gt(2).logicalOr(x.lt(2)), [1, 0, 1]);
    exact(x.gt(2).logicalNot(), [1, 1, 0]);
    close(x.gt(0).all(), 1, 0);
    close(x.gt(2).any(), 1, 0);
    close(x.gt(3).any(), 0, 0);
  });
});

describe('losses', () => {
  // logits rows [1,2,3] and [1,1,1]; −log_softmax row 0 = [2.4076…, 1.4076…, 0.4076…], row 1 = log 3 each
  const LSE = 3.4076059644443806;
  const logits = (): Tensor => f64([[1, 2, 3], [1, 1, 1]]);

  test('cross_entropy with class indices: mean of (lse − 3) and log 3', () => {
    const t = i64([2, 0]);
    const l0 = LSE - 3;
    const l1 = Math.log(3);
    close(F.crossEntropy(logits(), t), (l0 + l1) / 2, 1e-12);
    close(F.crossEntropy(logits(), t, { reduction: 'sum' }), l0 + l1, 1e-12);
    close(F.crossEntropy(logits(), t, { reduction: 'none' }), [l0, l1], 1e-12);
  });

  test('cross_entropy ignores the ignore_index target in the mean', () => {
    close(F.crossEntropy(logits(), i64([2, -100])), LSE - 3, 1e-12);
    close(F.crossEntropy(logits(), i64([2, 1]), { ignoreIndex: 1 }), LSE - 3, 1e-12);
  });

  test('cross_entropy with label smoothing 0.1: 0.9·nll + 0.1·mean_c(−log p_c)', () => {
    // row 0: 0.9·0.4076… + 0.1·(2.4076 + 1.4076 + 0.4076)/3 = 0.9·(lse−3) + 0.1·(lse−2)
    // row 1: every −log p = log 3 → log 3
    const r0 = 0.9 * (LSE - 3) + 0.1 * (LSE - 2);
    const r1 = Math.log(3);
    close(F.crossEntropy(logits(), i64([2, 0]), { labelSmoothing: 0.1 }), (r0 + r1) / 2, 1e-12);
    close(r0, 0.5076059644443806, 1e-12); // the hand value
  });

  test('cross_entropy with soft targets: −Σ p_c log softmax_c', () => {
    // row 0 target [0, .5, .5]: .5(lse−2) + .5(lse−3) = lse − 2.5; row 1 target uniform: log 3
    const target = f64([[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]);
    close(F.crossEntropy(logits(), target), (LSE - 2.5 + Math.log(3)) / 2, 1e-12);
    close(F.crossEntropy(logits(), target, { reduction: 'none' }), [LSE - 2.5, Math.log(3)], 1e-12);
  });

  test('nll_loss picks −logp[target]', () => {
    const lp = F.logSoftmax(logits(), 1);
    close(F.nllLoss(lp, i64([2, 0])), (LSE - 3 + Math.log(3)) / 2, 1e-12);
  });

  test('kl_div: Σ p(log p − input) with reductions none/sum/mean/batchmean and log targets', () => {
    // p = [[.5,.5],[.25,.75]], q = [[.25,.75],[.5,.5]]; terms:
    // .5 ln2, .5 ln(2/3), .25 ln(1/2), .75 ln(1.5)
    const terms = [0.5 * Math.LN2, 0.5 * Math.log(2 / 3), -0.25 * Math.LN2, 0.75 * Math.log(1.5)];
    const sum = terms.reduce((a, b) => a + b, 0);
    close(sum, 0.27465307216702745, 1e-12);
    const p = f64([[0.5, 0.5], [0.25, 0.75]]);
    const input = f64([[0.25, 0.75], [0.5, 0.5]]).log();
    close(F.klDiv(input, p, 'none'), terms, 1e-12);
    close(F.klDiv(input, p, 'sum'), sum, 1e-12);
    close(F.klDiv(input, p, 'mean'), sum / 4, 1e-12);
    close(F.klDiv(input, p, 'batchmean'), sum / 2, 1e-12);
    close(F.klDiv(input, p.log(), 'batchmean', true), sum / 2, 1e-12);
  });

  test('l1, mse and smooth_l1 on differences [−0.5, 2, 0]', () => {
    const a = f64([1, 2, 3]);
    const b = f64([1.5, 0, 3]);
    close(F.l1Loss(a, b), 2.5 / 3, 1e-12);
    close(F.l1Loss(a, b, 'sum'), 2.5, 1e-12);
    close(F.l1Loss(a, b, 'none'), [0.5, 2, 0], 1e-12);
    close(F.mseLoss(a, b), 4.25 / 3, 1e-12);
    close(F.mseLoss(a, b, 'sum'), 4.25, 1e-12);
    // smooth_l1 (β=1): |d|<1 → 0.5d² = 0.125; |d|≥1 → |d| − 0.5 = 1.5; 0 → 0
    close(F.smoothL1Loss(a, b, 'none'), [0.125, 1.5, 0], 1e-12);
    close(F.smoothL1Loss(a, b), 1.625 / 3, 1e-12);
    // β=2: 0.5·0.25/2 = 0.0625; 2 − 1 = 1
    close(F.smoothL1Loss(a, b, 'sum', 2), 1.0625, 1e-12);
  });

  test('cosine_similarity: orthogonal 0, parallel 1, [3,4]·[4,3] = 24/25', () => {
    close(F.cosineSimilarity(f64([[1, 0], [1, 1]]), f64([[0, 1], [2, 2]])), [0, 1], 1e-12);
    close(F.cosineSimilarity(f64([[3, 4]]), f64([[4, 3]])), [0.96], 1e-12);
    close(F.cosineSimilarity(f64([[3], [4]]), f64([[-4], [-3]]), 0), [-0.96], 1e-12);
  });

  test('binary_cross_entropy_with_logits: −[y log σ(x) + (1−y) log(1−σ(x))]', () => {
    // x = 0: log 2 for any y; x = 2, y = 1: log(1 + e^−2)
    close(F.binaryCrossEntropyWithLogits(f64([0, 2]), f64([1, 1]), 'none'), [Math.LN2, Math.log(1 + Math.exp(-2))], 1e-12);
  });
});

describe('dropout', () => {
  test('training: about p of the elements are zero, survivors are scaled by 1/(1−p)', () => {
    T.manualSeed(1);
    const n = 100000;
    const y = F.dropout(T.ones([n]), 0.3, true).toArray();
    let zeros = 0;
    for (const v of y) {
      if (v === 0) zeros++;
      else assert.ok(Math.abs(v - 1 / 0.7) < 1e-6, `survivor ${v} is not 1/0.7`);
    }
    // the zero fraction has std √(0.21/1e5) ≈ 0.0015; 0.01 is ~7σ
    assert.ok(Math.abs(zeros / n - 0.3) < 0.01, `zero fraction ${zeros / n}`);
  });

  test('eval (and p = 0) is the identity, as a new handle', () => {
    const x = T.tensor([1, 2, 3]);
    const y = F.dropout(x, 0.5, false);
    exact(y, [1, 2, 3]);
    y.dispose();
    assert.equal(x.isDisposed, false);
    exact(F.dropout(x, 0, true), [1, 2, 3]);
  });
});

describe('creation', () => {
  test('zeros/ones/full/empty: shapes and dtypes', () => {
    const z = T.zeros([2, 3]);
    assert.deepEqual(z.shape, [2, 3]);
    assert.equal(z.dtype, 'float32');
    exact(z, [0, 0, 0, 0, 0, 0]);
    const o = T.ones([2], { dtype: 'int32' });
    assert.equal(o.dtype, 'int32');
    exact(o, [1, 1]);
    const f = T.full([2, 2], 3.5);
    assert.equal(f.dtype, 'float32');
    exact(f, [3.5, 3.5, 3.5, 3.5]);
    assert.equal(T.full([1], true).dtype, 'bool');
    assert.equal(T.full([1], 7, { dtype: 'int64' }).dtype, 'int64');
    assert.deepEqual(T.empty([4, 1], { dtype: 'float64' }).shape, [4, 1]);
    assert.deepEqual(T.zeros([]).shape, []);
    assert.equal(T.zeros([]).numel(), 1);
    assert.equal(T.zeros([0, 3]).numel(), 0);
  });

  test('like-constructors copy shape and dtype', () => {
    const x = T.zeros([2, 3], { dtype: 'float64' });
    const o = T.onesLike(x);
    assert.deepEqual(o.shape, [2, 3]);
    assert.equal(o.dtype, 'float64');
    exact(T.fullLike(x, 2), [2, 2, 2, 2, 2, 2]);
    assert.equal(T.zerosLike(x, { dtype: 'int32' }).dtype, 'int32');
    assert.deepEqual(T.randnLike(x).shape, [2, 3]);
  });

  test('arange: integral arguments give int64, fractional float32', () => {
    const a = T.arange(5);
    assert.equal(a.dtype, 'int64');
    exact(a, [0, 1, 2, 3, 4]);
    exact(T.arange(2, 10, 3), [2, 5, 8]);
    const f = T.arange(0, 1, 0.25);
    assert.equal(f.dtype, 'float32');
    exact(f, [0, 0.25, 0.5, 0.75]);
    assert.equal(T.arange(3, undefined, 1, { dtype: 'float64' }).dtype, 'float64');
  });

  test('linspace includes both ends; eye is the identity (also rectangular)', () => {
    exact(T.linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]);
    exact(T.linspace(-1, 1, 3, { dtype: 'float64' }), [-1, 0, 1]);
    exact(T.eye(2), [1, 0, 0, 1], [2, 2]);
    exact(T.eye(2, 3), [1, 0, 0, 0, 1, 0], [2, 3]);
  });

  test('randn over 1e5 samples: mean within 0.02 of 0, std within 0.02 of 1', () => {
    T.manualSeed(123);
    const x = T.randn([100000]);
    assert.equal(x.dtype, 'float32');
    // standard errors: mean 1/√n ≈ 0.0032, std 1/√(2n) ≈ 0.0022; 0.02 is > 6σ
    assert.ok(Math.abs(x.mean().item()) < 0.02, `mean ${x.mean().item()}`);
    assert.ok(Math.abs(x.std().item() - 1) < 0.02, `std ${x.std().item()}`);
    assert.equal(T.randn([2, 2], { dtype: 'float64' }).dtype, 'float64');
  });

  test('rand lies in [0, 1) with mean ≈ 0.5', () => {
    T.manualSeed(5);
    const x = T.rand([100000]);
    assert.ok(x.min().item() >= 0);
    assert.ok(x.max().item() < 1);
    assert.ok(Math.abs(x.mean().item() - 0.5) < 0.01);
  });

  test('randint(3, 7) is int64 in [3, 7) and hits every value', () => {
    const r = T.randint(3, 7, [1000]);
    assert.equal(r.dtype, 'int64');
    const seen = new Set(r.toArray());
    assert.deepEqual([...seen].sort(), [3, 4, 5, 6]);
    assert.equal(T.randint(0, 2, [3], { dtype: 'int32' }).dtype, 'int32');
  });

  test('randperm is a permutation of 0..n−1', () => {
    const p = T.randperm(10).toArray();
    assert.deepEqual([...p].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('manualSeed makes randn, rand, randint and dropout reproducible; different seeds differ', () => {
    const draw = (seed: number): number[][] => {
      T.manualSeed(seed);
      return [T.randn([8]).toArray(), T.rand([8]).toArray(), T.randint(0, 100, [8]).toArray(), F.dropout(T.ones([16]), 0.5, true).toArray()];
    };
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7)[0], draw(8)[0]);
  });
});

describe('copies, conversions and data', () => {
  test('clone is an independent copy', () => {
    const x = T.tensor([1, 2]);
    const c = x.clone();
    c.fill_(9);
    exact(x, [1, 2]);
    exact(c, [9, 9]);
  });

  test('detach shares storage but not the graph', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    const d = x.detach();
    assert.equal(d.requiresGrad, false);
    d.add_(1); // writes through to x's storage
    exact(x, [2, 3]);
  });

  test('contiguous of a transpose keeps the values in the transposed order', () => {
    const t = T.arange(6).reshape([2, 3]).t();
    const c = t.contiguous();
    exact(c, [0, 3, 1, 4, 2, 5], [3, 2]);
    exact(c.view([6]), [0, 3, 1, 4, 2, 5]);
  });

  test('to() converts dtypes: float → int64 truncates, → bool is nonzero, int → float64', () => {
    const x = T.tensor([1.7, -1.7, 0]);
    const l = x.to('int64');
    assert.equal(l.dtype, 'int64');
    exact(l, [1, -1, 0]);
    const b = x.bool();
    assert.equal(b.dtype, 'bool');
    exact(b, [1, 1, 0]);
    const d = T.arange(3).double();
    assert.equal(d.dtype, 'float64');
    exact(d, [0, 1, 2]);
    assert.equal(x.to({ dtype: 'int32' }).dtype, 'int32');
    assert.equal(x.float().dtype, 'float32');
    assert.equal(x.long().dtype, 'int64');
    assert.equal(x.int().dtype, 'int32');
    assert.equal(x.cpu().device, 'cpu');
    // float16: 1.7 rounds to the nearest half, 1.7001953125
    close(x.to('float16').to('float32'), [1.7001953125, -1.7001953125, 0], 0);
  });

  test('data() returns the typed array of each dtype', () => {
    const cases: [T.DType, unknown][] = [
      ['float32', Float32Array],
      ['float64', Float64Array],
      ['int32', Int32Array],
      ['int64', BigInt64Array],
      ['uint8', Uint8Array],
      ['bool', Uint8Array],
      ['int8', Int8Array],
      ['int16', Int16Array],
      ['float16', Uint16Array],
      ['bfloat16', Uint16Array],
    ];
    for (const [dtype, ctor] of cases) {
      const d = T.ones([3], { dtype }).data();
      assert.ok(d instanceof (ctor as Function), `${dtype} gave ${d.constructor.name}`);
      assert.equal(d.length, 3);
    }
    assert.deepEqual(Array.from(i64([5, -6]).data() as BigInt64Array), [5n, -6n]);
    assert.deepEqual(Array.from(T.ones([2], { dtype: 'float16' }).data() as Uint16Array), [0x3c00, 0x3c00]); // 1.0 in half
    assert.deepEqual(Array.from(T.ones([1], { dtype: 'bfloat16' }).data() as Uint16Array), [0x3f80]); // 1.0 in bfloat16
  });

  test('item() reads one-element tensors of any dtype', () => {
    assert.equal(T.tensor(5).item(), 5);
    assert.equal(T.tensor([[2.5]]).item(), 2.5);
    assert.equal(i64([-7]).item(), -7);
    assert.equal(T.tensor(true).item(), 1);
    close(T.tensor([0.1]).item(), 0.1, 1e-7);
    assert.equal(T.tensor(0.1, { dtype: 'float64' }).item(), 0.1);
  });

  test('tensor() from each typed-array kind gets the matching dtype and values', () => {
    const cases: [ArrayBufferView & ArrayLike<number | bigint>, T.DType][] = [
      [new Float32Array([1.5, -2]), 'float32'],
      [new Float64Array([1.5, -2]), 'float64'],
      [new Int32Array([3, -4]), 'int32'],
      [new BigInt64Array([3n, -4n]), 'int64'],
      [new Uint8Array([0, 255]), 'uint8'],
      [new Int8Array([-128, 127]), 'int8'],
      [new Int16Array([-300, 300]), 'int16'],
    ];
    for (const [arr, dtype] of cases) {
      const t = T.tensor(arr as T.TypedArray);
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.toArray(), Array.from(arr as ArrayLike<number | bigint>, Number));
    }
  });

  test('tensor() from typed arrays with a shape, a converting dtype, and a subarray view', () => {
    exact(T.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] }), [1, 2, 3, 4, 5, 6], [2, 3]);
    const c = T.tensor(new Int32Array([1, 2]), { dtype: 'float64' });
    assert.equal(c.dtype, 'float64');
    exact(c, [1, 2]);
    const b = T.tensor(new Uint8Array([0, 1, 1]), { dtype: 'bool' });
    assert.equal(b.dtype, 'bool');
    exact(b, [0, 1, 1]);
    const sub = new Float32Array([9, 9, 1, 2, 9]).subarray(2, 4); // byteOffset 8
    exact(T.tensor(sub), [1, 2]);
  });

  test('float16 and bfloat16 from raw bits in a Uint16Array', () => {
    // half: 0x3C00 = 1, 0xC000 = −2, 0x3800 = 0.5, 0x7BFF = 65504 (max)
    const h = T.tensor(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]), { dtype: 'float16' });
    assert.equal(h.dtype, 'float16');
    assert.deepEqual(Array.from(h.data() as Uint16Array), [0x3c00, 0xc000, 0x3800, 0x7bff]);
    exact(h.float(), [1, -2, 0.5, 65504]);
    // bfloat16: 0x3F80 = 1, 0x4040 = 3, 0xBF00 = −0.5
    const bf = T.tensor(new Uint16Array([0x3f80, 0x4040, 0xbf00]), { dtype: 'bfloat16' });
    assert.equal(bf.dtype, 'bfloat16');
    exact(bf.float(), [1, 3, -0.5]);
  });

  test('toArray() of float16/bfloat16 gives the values, not the raw bits (data() gives the bits)', () => {
    const base = T.liveTensors();
    const h = T.tensor(new Uint16Array([0x3c00, 0xc000]), { dtype: 'float16' });
    assert.deepEqual(h.toArray(), [1, -2]);
    const bf = T.tensor([0.5, 3], { dtype: 'bfloat16' });
    assert.deepEqual(bf.toArray(), [0.5, 3]);
    assert.deepEqual(Array.from(bf.data() as Uint16Array), [0x3f00, 0x4040]);
    assert.equal(T.liveTensors(), base + 2); // the widened copy is freed
  });

  test('numbers with dtype bool become 0/1 (nonzero is true), like torch.tensor(..., dtype=bool)', () => {
    const b = T.tensor([0, 2, -1, 0.5], { dtype: 'bool' });
    assert.equal(b.dtype, 'bool');
    exact(b, [0, 1, 1, 1]);
    exact(b.logicalNot(), [1, 0, 0, 0]);
  });

  test('nested arrays infer the shape; bool arrays give bool; dtype option converts', () => {
    const t = T.tensor([[[1], [2]], [[3], [4]]]);
    assert.deepEqual(t.shape, [2, 2, 1]);
    assert.equal(T.tensor([true, false]).dtype, 'bool');
    assert.equal(T.tensor([1, 2], { dtype: 'int32' }).dtype, 'int32');
    exact(T.tensor([1, 2, 3, 4], { shape: [2, 2] }), [1, 2, 3, 4], [2, 2]);
    assert.deepEqual(T.tensor(3).shape, []);
  });
});

describe('callOp: untyped access', () => {
  test('overload resolution: (tensor, 1) picks add.Scalar, (tensor, tensor) picks add.Tensor', () => {
    const t = i64([1, 2, 3]);
    const a = T.callOp('aten::add', null, [t, 1]) as Tensor;
    assert.equal(a.dtype, 'int64');
    exact(a, [2, 3, 4]);
    exact(T.callOp('aten::add', null, [t, t]) as Tensor, [2, 4, 6]);
    exact(T.callOp('add', null, [t, t, 2]) as Tensor, [3, 6, 9]); // unqualified name, alpha
  });

  test('keyword arguments fill named schema arguments', () => {
    const x = f64([[1, 2, 3], [4, 5, 6]]);
    const s = T.callOp('aten::sum', 'dim_IntList', [x], { dim: [1], keepdim: true }) as Tensor;
    exact(s, [6, 15], [2, 1]);
    exact(T.callOp('aten::add', 'Tensor', [x, x], { alpha: 0.5 }) as Tensor, [1.5, 3, 4.5, 6, 7.5, 9]);
    const c = T.callOp('aten::clamp', null, [x], { min: 2, max: 4 }) as Tensor;
    exact(c, [2, 2, 3, 4, 4, 4]);
  });

  test('non-tensor results: ints, bools, and tuples as arrays of tensors', () => {
    const x = T.tensor([[3, 1, 2], [0, 5, 4]]);
    assert.equal(T.callOp('aten::size', 'int', [x, 1]), 3);
    assert.equal(T.callOp('aten::is_floating_point', null, [x]), true);
    const r = T.callOp('aten::max', null, [x, 1]) as Tensor[];
    assert.equal(r.length, 2);
    exact(r[0]!, [3, 5]);
    exact(r[1]!, [0, 1]);
  });

  test('tensor lists as arguments and results', () => {
    exact(T.callOp('aten::cat', null, [[T.tensor([1]), T.tensor([2, 3])]]) as Tensor, [1, 2, 3]);
    const parts = T.callOp('aten::unbind', 'int', [T.arange(3)]) as Tensor[];
    assert.deepEqual(parts.map((p) => p.item()), [0, 1, 2]);
  });

  test('listOps and schemaOf describe the dispatcher', () => {
    const names = T.listOps();
    assert.ok(names.includes('aten::add.Tensor'));
    assert.ok(names.length > 1000);
    assert.match(T.schemaOf('aten::add', 'Tensor'), /^aten::add\.Tensor\(Tensor self, Tensor other, \*, Scalar alpha=1\) -> Tensor$/);
  });
});

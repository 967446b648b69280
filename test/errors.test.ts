// Bad input never aborts the process: every libtorch error is a catchable JS Error that names the
// operator and carries libtorch's reason, and the engine keeps working afterwards.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { F, type Tensor } from '../src/index.js';
import { native } from '../src/native/binding.js';

const i64 = (v: unknown[]): Tensor => T.tensor(v as number[], { dtype: 'int64' });

/**
 * Asserts that `fn` throws an Error (of class `cls`, Error by default) whose message contains every
 * string/regexp in `parts`, then that the engine still computes: [1,2]·[3,4] = 11 and grads work.
 */
function throwsThenWorks(fn: () => unknown, parts: (string | RegExp)[], cls: new (...a: never[]) => Error = Error): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== null, 'expected a throw');
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${(caught as object)?.constructor?.name}: ${String(caught)}`);
  const msg = (caught as Error).message;
  for (const p of parts) {
    if (typeof p === 'string') assert.ok(msg.includes(p), `message lacks '${p}': ${msg}`);
    else assert.match(msg, p);
  }
  stillWorks();
}

function stillWorks(): void {
  assert.equal(T.tensor([1, 2]).matmul(T.tensor([3, 4])).item(), 11);
  const x = T.tensor([2], { requiresGrad: true });
  x.mul(x).sum().backward();
  assert.equal(x.grad!.item(), 4);
  assert.equal(T.isGradEnabled(), true);
  assert.equal(native.isInferenceMode(), false);
}

describe('shape mismatches', () => {
  test('matmul of incompatible matrices names aten::matmul and the shapes', () => {
    throwsThenWorks(() => T.tensor([[1, 2]]).matmul(T.tensor([[1, 2]])), ['aten::matmul', 'cannot be multiplied', '1x2 and 1x2']);
  });

  test('add of non-broadcastable shapes names aten::add.Tensor and the mismatching sizes', () => {
    throwsThenWorks(() => T.ones([2, 2]).add(T.ones([3])), ['aten::add.Tensor', 'must match the size of tensor b (3)']);
  });

  test('conv2d with the wrong number of input channels names aten::conv2d', () => {
    throwsThenWorks(() => F.conv2d(T.ones([1, 3, 4, 4]), T.ones([2, 2, 3, 3])), ['aten::conv2d', 'to have 2 channels, but got 3 channels']);
  });

  test('conv2d of a 2-D input names aten::conv2d and the expected ranks', () => {
    throwsThenWorks(() => F.conv2d(T.ones([3, 4]), T.ones([1, 1, 2, 2])), ['aten::conv2d', 'Expected 3D (unbatched) or 4D (batched)']);
  });

  test('bmm, linear, cat, stack, expand, reshape, view: each names its operator', () => {
    throwsThenWorks(() => T.ones([2, 2, 3]).bmm(T.ones([3, 2, 2])), ['aten::bmm']);
    throwsThenWorks(() => F.linear(T.ones([2, 3]), T.ones([4, 5])), ['aten::linear', 'cannot be multiplied']);
    throwsThenWorks(() => T.cat([T.ones([2, 2]), T.ones([2, 3])], 0), ['aten::cat', 'Sizes of tensors must match']);
    throwsThenWorks(() => T.stack([T.ones([2]), T.ones([3])]), ['aten::stack', 'equal size']);
    throwsThenWorks(() => T.ones([2]).expand([3]), ['aten::expand', 'must match the existing size']);
    throwsThenWorks(() => T.arange(6).reshape([4]), ['aten::reshape', "shape '[4]' is invalid for input of size 6"]);
    throwsThenWorks(() => T.ones([2, 3]).t().view([6]), ['aten::view', 'Use .reshape']);
  });

  test('layer_norm and batch_norm with mismatched parameter shapes', () => {
    throwsThenWorks(() => F.layerNorm(T.ones([2, 3]), [4]), ['aten::layer_norm', 'normalized_shape=[4]']);
    throwsThenWorks(() => F.batchNorm(T.ones([2, 3]), T.zeros([4]), T.ones([4]), null, null, true), ['aten::batch_norm', 'running_mean should contain 3 elements']);
  });

  test('out-of-range dims and indices', () => {
    throwsThenWorks(() => T.ones([2, 2]).sum(5), ['aten::sum.dim_IntList', 'Dimension out of range']);
    throwsThenWorks(() => T.ones([2, 2]).select(0, 10), ['aten::select.int', 'out of range']);
    throwsThenWorks(() => T.ones([2, 3]).gather(1, i64([[5]])), ['aten::gather', 'out of bounds']);
    throwsThenWorks(() => F.embedding(T.ones([3, 2]), i64([7])), ['aten::embedding', 'index out of range']);
    throwsThenWorks(() => T.ones([2, 3]).indexSelect(1, i64([3])), ['aten::index_select', /out of (DATA )?(range|bounds)/]);
  });
});

describe('wrong dtypes', () => {
  test('cross_entropy with float class targets names aten::cross_entropy_loss and the expected Long', () => {
    throwsThenWorks(() => F.crossEntropy(T.ones([2, 3]), T.tensor([1, 0])), ['aten::cross_entropy_loss', 'expected scalar type Long but found Float']);
  });

  test('cross_entropy with float (probability) targets of the wrong shape is rejected', () => {
    throwsThenWorks(() => F.crossEntropy(T.ones([2, 3]), T.rand([2, 4])), ['aten::cross_entropy_loss', /target/i]);
  });

  test('cross_entropy with a class index out of range', () => {
    throwsThenWorks(() => F.crossEntropy(T.ones([2, 3]), i64([1, 5])), ['aten::cross_entropy_loss', 'Target 5 is out of bounds']);
  });

  test('index_select with a float index names aten::index_select and the expected index dtype', () => {
    throwsThenWorks(() => T.ones([3]).indexSelect(0, T.tensor([0])), ['aten::index_select', 'Expected dtype int32 or int64 for index']);
  });

  test('mm of float32 with float64 names aten::mm', () => {
    throwsThenWorks(() => T.ones([2, 2]).mm(T.ones([2, 2], { dtype: 'float64' })), ['aten::mm', 'expected scalar type Float but found Double']);
  });

  test('an unknown dtype name is a TypeError naming the operator and the argument', () => {
    throwsThenWorks(() => T.zeros([2], { dtype: 'float128' as T.DType }), ['aten::zeros', "argument 'dtype'", 'float128'], TypeError);
  });
});

describe('operators and arguments', () => {
  test('an unknown operator name through callOp names it', () => {
    throwsThenWorks(() => T.callOp('aten::no_such_op', null, []), ['unknown operator aten::no_such_op']);
    throwsThenWorks(() => T.callOp('aten::add', 'NoSuchOverload', [T.ones([1]), 1]), ['unknown operator aten::add.NoSuchOverload']);
  });

  test('an unknown operator name through the typed op() handle names it', () => {
    throwsThenWorks(() => T.op('aten::no_such_op2').t([]), ['unknown operator aten::no_such_op2']);
  });

  test('callOp without an overload lists the schemas it tried and why each failed', () => {
    throwsThenWorks(
      () => T.callOp('aten::add', null, ['x', 1]),
      ['no overload of aten::add', 'aten::add.Tensor(Tensor self', "argument 'self' expects a tensor, got string"],
      TypeError,
    );
    throwsThenWorks(() => T.callOp('aten::cat', null, [[1, 2]]), ['no overload of aten::cat', 'expects a list of tensors, got number'], TypeError);
    throwsThenWorks(() => T.callOp('aten::neg', null, [T.ones([1]), 1, 2]), ['no overload of aten::neg', 'takes 1 arguments, got 3'], TypeError);
  });

  test('callOp with a given overload: wrong type, missing, non-integer and extra keyword arguments', () => {
    throwsThenWorks(() => T.callOp('aten::add', 'Tensor', [T.ones([1]), 'x']), ['aten::add.Tensor', "argument 'other' expects a tensor, got string"], TypeError);
    throwsThenWorks(() => T.callOp('aten::add', 'Tensor', [T.ones([1])]), ['aten::add.Tensor', "missing argument 'other'"], TypeError);
    throwsThenWorks(() => T.callOp('aten::sum', 'dim_IntList', [T.ones([2]), [0.5]]), ['aten::sum.dim_IntList', "argument 'dim' expects an integer"], TypeError);
    throwsThenWorks(() => T.callOp('aten::add', 'Tensor', [T.ones([1]), T.ones([1])], { beta: 2 }), ['aten::add.Tensor', 'unexpected keyword'], TypeError);
    throwsThenWorks(() => T.callOp('aten::add', 'Tensor', [T.ones([1]), T.ones([1]), 'two']), ['aten::add.Tensor', "argument 'alpha' expects a number, got string"], TypeError);
  });

  test('a libtorch error reached through callOp overload resolution still names the overload', () => {
    throwsThenWorks(() => T.callOp('aten::matmul', null, [T.ones([2, 3]), T.ones([2, 3])]), ['aten::matmul', 'cannot be multiplied']);
  });

  test('an in-place op on a leaf that requires grad names the in-place operator', () => {
    throwsThenWorks(() => T.ones([2], { requiresGrad: true }).add_(1), ['aten::add_.Scalar', 'leaf Variable that requires grad']);
  });
});

describe('tensor lifetime and data', () => {
  test('using a disposed tensor throws (method, callOp, metadata) instead of crashing', () => {
    const x = T.ones([2]);
    x.dispose();
    assert.equal(x.isDisposed, true);
    assert.equal(String(x), 'Tensor(disposed)');
    throwsThenWorks(() => x.add(1), ['disposed']);
    throwsThenWorks(() => T.callOp('aten::neg', null, [x]), ['disposed']);
    throwsThenWorks(() => x.shape, ['disposed']);
    throwsThenWorks(() => x.toArray(), ['disposed']);
    throwsThenWorks(() => T.cat([T.ones([1]), x]), ['disposed']);
  });

  test('a disposed native handle reaching the addon is rejected there too', () => {
    const x = T.ones([2]);
    const h = x.handle;
    x.dispose();
    throwsThenWorks(() => native.shape(h), ['shape', 'disposed']);
    throwsThenWorks(() => T.op('aten::neg').t([h]), ['disposed']);
    throwsThenWorks(() => native.toTypedArray(h), ['disposed']);
  });

  test('a non-tensor where the addon expects a handle is a TypeError', () => {
    throwsThenWorks(() => native.shape({} as never), ['expected a tensor handle'], TypeError);
  });

  test('item() on a multi-element or empty tensor names item and the element count', () => {
    throwsThenWorks(() => T.tensor([1, 2]).item(), ['item', '2 elements, expected exactly 1']);
    throwsThenWorks(() => T.zeros([0]).item(), ['item', '0 elements']);
  });

  test('fromTypedArray with a shape that does not match the length is a RangeError', () => {
    throwsThenWorks(() => T.tensor(new Float32Array(3), { shape: [2, 2] }), ['fromTypedArray', 'shape has 4 elements but the array has 3'], RangeError);
    throwsThenWorks(() => T.tensor(new Float32Array(2), { shape: [-1, -2] }), ['fromTypedArray', 'non-negative integers'], RangeError);
  });

  test('a Uint16Array without float16/bfloat16 dtype is a TypeError', () => {
    throwsThenWorks(() => T.tensor(new Uint16Array([0x3c00])), ['fromTypedArray', 'Uint16Array holds raw float16/bfloat16 bits'], TypeError);
  });

  test('a ragged nested array is a RangeError', () => {
    throwsThenWorks(() => T.tensor([[1, 2], [3]]), ['tensor:', 'ragged'], RangeError);
  });
});

describe('autograd misuse', () => {
  test('backward on a tensor that does not require grad names backward and the reason', () => {
    throwsThenWorks(() => T.tensor([1, 2]).sum().backward(), ['backward', 'does not require grad']);
  });

  test('grad() wrt a tensor outside the graph names grad', () => {
    throwsThenWorks(() => T.grad(T.ones([1]).sum(), [T.ones([1])]), ['grad', 'does not require grad']);
  });

  test('assigning a gradient of the wrong shape names setGrad and both shapes', () => {
    const x = T.ones([2], { requiresGrad: true });
    throwsThenWorks(() => {
      x.grad = T.ones([3]);
    }, ['setGrad', 'gradient shape [3] does not match tensor shape [2]']);
    assert.equal(x.grad, null);
  });

  test('an error inside inferenceMode or noGrad restores the modes', () => {
    throwsThenWorks(() => T.inferenceMode(() => T.ones([2]).matmul(T.ones([3]))), ['aten::matmul']);
    throwsThenWorks(() => T.noGrad(() => T.ones([2]).add(T.ones([3]))), ['aten::add.Tensor']);
  });

  test('exiting inference mode when not in it throws', () => {
    throwsThenWorks(() => native.exitInferenceMode(), ['exitInferenceMode', 'not in inference mode']);
  });
});

describe('global settings', () => {
  test('manualSeed rejects negative and fractional seeds', () => {
    throwsThenWorks(() => T.manualSeed(-1), ['manualSeed', 'non-negative integer'], RangeError);
    throwsThenWorks(() => T.manualSeed(1.5), ['manualSeed'], RangeError);
  });

  test('setNumThreads rejects 0', () => {
    const n = T.getNumThreads();
    throwsThenWorks(() => T.setNumThreads(0), ['setNumThreads', 'at least 1'], RangeError);
    assert.equal(T.getNumThreads(), n);
  });

  test('setDefaultDevice("cuda") without CUDA explains why', { skip: T.cudaAvailable() ? 'CUDA is available here' : false }, () => {
    throwsThenWorks(() => T.setDefaultDevice('cuda'), ["device 'cuda' requested but this libtorch has no CUDA"]);
    assert.equal(T.getDefaultDevice(), 'cpu');
  });

  test('a burst of 50 failing calls leaves the engine and the live-tensor count intact', () => {
    const base = T.liveTensors();
    for (let i = 0; i < 50; i++) {
      assert.throws(() => T.tidy(() => T.ones([2, 2]).matmul(T.ones([3, 3]))), /aten::matmul/);
    }
    assert.equal(T.liveTensors(), base);
    stillWorks();
  });
});

// Module mechanics (names, buffers, modes, state dicts, casting), layer gradients against finite
// differences, MultiheadAttention against a by-hand computation, and the initialisers' statistics.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { F, type Tensor } from '../src/index.js';
import {
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  Dropout,
  Embedding,
  GELU,
  Identity,
  LayerNorm,
  Linear,
  Module,
  MultiheadAttention,
  ReLU,
  Sequential,
  StateDictError,
  snakeCase,
} from '../src/nn/index.js';
import * as init from '../src/nn/init.js';
import { Attention, VisionTransformer } from '../src/models/vit.js';

T.manualSeed(1234);
// Tiny tensors: one intra-op thread is fastest and immune to OpenMP spin-waiting on a busy machine.
T.setNumThreads(1);

// ---------------------------------------------------------------------------------------------
// helpers

const f64 = (shape: number[], requiresGrad = true): Tensor => T.randn(shape, { dtype: 'float64', requiresGrad });

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, `shapes differ: [${a.shape}] vs [${b.shape}]`);
  return T.tidy(() => (a.numel() === 0 ? 0 : a.sub(b).abs().max().item()));
}

function expectThrows(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    return e;
  }
  assert.fail('expected an exception');
}

/** Overwrites every float parameter with N(0, std) samples, so gradients are O(1), not O(init). */
function randomise(m: Module, std = 0.5): void {
  T.noGrad(() => {
    for (const p of m.parameters()) p.normal_(0, std);
  });
}

/**
 * gradcheck with relative error < 1e-5, plus a guard that the analytic gradient of every input is
 * well above gradcheck's absolute floor (1e-3): a gradient that is ~0 everywhere would pass the
 * relative test vacuously.
 */
function checkGrad(name: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  const r = T.gradcheck(fn, inputs);
  assert.ok(r.ok && r.maxRelError < 1e-5, `${name}: max relative error ${r.maxRelError}, worst ${JSON.stringify(r.worst)}`);
  T.tidy(() => {
    const out = fn(...inputs);
    const gs = T.grad(out.mul(T.randnLike(out)).sum(), inputs, { allowUnused: true });
    gs.forEach((g, i) => {
      assert.ok(g !== null, `${name}: input ${i} does not reach the output`);
      const m = g.abs().max().item();
      assert.ok(m > 1e-2, `${name}: gradient of input ${i} is degenerate (max |g| = ${m})`);
    });
  });
}

const names = (pairs: [string, unknown][]): string[] => pairs.map(([k]) => k);

// A module with every kind of child: own parameter, camelCase child, array of children, Sequential.
class Net extends Module {
  logScale: Tensor;
  patchEmbed = new Linear(2, 3);
  blocks = [new Linear(3, 3), new Linear(3, 3, false)];
  headSeq = new Sequential(new Linear(3, 2), new GELU(), new Linear(2, 1));
  constructor() {
    super();
    this.logScale = this.registerParameter('log_scale', T.zeros([1]));
  }
  forward(x: Tensor): Tensor {
    let h = this.patchEmbed.forward(x);
    for (const b of this.blocks) h = b.forward(h);
    return this.headSeq.forward(h).mul(this.logScale.exp());
  }
}

// A small conv net with batch norm (parameters and buffers), for state-dict tests.
class ConvNet extends Module {
  conv = new Conv2d(2, 3, 3, { padding: 1 });
  bn = new BatchNorm2d(3);
  fc = new Linear(3 * 4 * 4, 2);
  forward(x: Tensor): Tensor {
    return this.fc.forward(this.bn.forward(this.conv.forward(x)).relu().flatten(1));
  }
}

// ---------------------------------------------------------------------------------------------

describe('Module structure', () => {
  test('snakeCase maps camelCase property names to PyTorch names', () => {
    assert.equal(snakeCase('patchEmbed'), 'patch_embed');
    assert.equal(snakeCase('headDist'), 'head_dist');
    assert.equal(snakeCase('fc1'), 'fc1');
    assert.equal(snakeCase('norm2'), 'norm2');
    assert.equal(snakeCase('inProjWeight'), 'in_proj_weight');
  });

  test('namedParameters lists own parameters first, then children in property order, with PyTorch names', () => {
    const net = new Net();
    assert.deepEqual(names(net.namedParameters()), [
      'log_scale',
      'patch_embed.weight',
      'patch_embed.bias',
      'blocks.0.weight',
      'blocks.0.bias',
      'blocks.1.weight', // blocks.1 has no bias
      'head_seq.0.weight',
      'head_seq.0.bias',
      'head_seq.2.weight', // the GELU at index 1 has no parameters but keeps its index
      'head_seq.2.bias',
    ]);
    assert.deepEqual(names(net.namedModules()), ['', 'patch_embed', 'blocks.0', 'blocks.1', 'head_seq', 'head_seq.0', 'head_seq.1', 'head_seq.2']);
    // the listed tensors are the layers' own properties, not copies
    assert.ok(net.namedParameters()[1]![1] === net.patchEmbed.weight);
    assert.ok(net.parameters().every((p) => p.requiresGrad && p.isLeaf));
  });

  test('a top-level Sequential names its children 0, 1, ... (keys 0.weight, not layers.0.weight)', () => {
    const s = new Sequential(new Linear(2, 2), new ReLU(), new Linear(2, 1));
    assert.deepEqual(Object.keys(s.stateDict()), ['0.weight', '0.bias', '2.weight', '2.bias']);
  });

  test('Sequential.forward composes its layers and never disposes the caller\'s input, even behind an Identity', () => {
    const a = new Linear(3, 3);
    const s = new Sequential(new Identity(), a, new ReLU());
    const x = T.randn([2, 3]);
    const y = s.forward(x);
    assert.equal(x.isDisposed, false, 'Sequential disposed its input');
    const expected = a.forward(x).relu();
    assert.equal(maxAbsDiff(y, expected), 0);
  });

  test('BatchNorm2d: weight/bias are parameters, running_mean/running_var/num_batches_tracked are buffers, all in the state dict', () => {
    const bn = new BatchNorm2d(4);
    assert.deepEqual(names(bn.namedParameters()), ['weight', 'bias']);
    assert.deepEqual(names(bn.namedBuffers()), ['running_mean', 'running_var', 'num_batches_tracked']);
    assert.deepEqual(Object.keys(bn.stateDict()), ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    assert.equal(bn.numBatchesTracked.dtype, 'int64');
    assert.ok(bn.buffers().every((b) => !b.requiresGrad), 'buffers must not require grad');
    // nested: buffers get the dotted prefix too
    const net = new ConvNet();
    assert.deepEqual(names(net.namedBuffers()), ['bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked']);
  });

  test('BatchNorm2d in training updates running statistics with momentum 0.1 and unbiased variance', () => {
    const bn = new BatchNorm2d(1);
    // one channel, values 1..4: mean 2.5, unbiased var 5/3
    T.noGrad(() => bn.forward(T.tensor([1, 2, 3, 4], { shape: [4, 1, 1, 1] })));
    assert.ok(Math.abs(bn.runningMean.item() - 0.25) < 1e-6);
    assert.ok(Math.abs(bn.runningVar.item() - (0.9 + 0.1 * (5 / 3))) < 1e-6);
    assert.equal(bn.numBatchesTracked.item(), 1);
    bn.eval();
    T.noGrad(() => bn.forward(T.ones([2, 1, 1, 1])));
    assert.equal(bn.numBatchesTracked.item(), 1, 'eval must not count batches');
    assert.ok(Math.abs(bn.runningMean.item() - 0.25) < 1e-6, 'eval must not update statistics');
  });

  test('train() and eval() propagate to every descendant (arrays and Sequential included)', () => {
    const net = new Net();
    assert.ok(net.namedModules().every(([, m]) => m.training));
    net.eval();
    const flags = net.namedModules().map(([n, m]) => [n, m.training]);
    assert.ok(flags.every(([, t]) => t === false), `still training: ${JSON.stringify(flags)}`);
    net.train();
    assert.ok(net.namedModules().every(([, m]) => m.training));
    net.train(false);
    assert.ok(net.namedModules().every(([, m]) => !m.training));
  });

  test('zeroGrad clears every parameter gradient after a backward pass', () => {
    const net = new Net();
    T.tidy(() => net.forward(T.randn([4, 2])).sum().backward());
    const before = net.parameters().map((p) => p.grad);
    assert.ok(before.every((g) => g !== null), 'every parameter should have a gradient after backward');
    net.zeroGrad();
    assert.ok(net.parameters().every((p) => p.grad === null));
  });

  test('numParameters equals the hand count: Linear(3,4) = 3·4 + 4 = 16, Conv2d(2,3,3) = 3·2·3·3 + 3 = 57', () => {
    assert.equal(new Linear(3, 4).numParameters(), 16);
    assert.equal(new Linear(3, 4, false).numParameters(), 12);
    assert.equal(new Conv2d(2, 3, 3).numParameters(), 57);
    // buffers do not count: BatchNorm2d(4) has 4 + 4 parameters
    assert.equal(new BatchNorm2d(4).numParameters(), 8);
    // MultiheadAttention(8, 2): in_proj 3·8·8 + 3·8, out_proj 8·8 + 8
    assert.equal(new MultiheadAttention(8, 2).numParameters(), 192 + 24 + 64 + 8);
  });
});

// ---------------------------------------------------------------------------------------------

describe('stateDict / loadStateDict', () => {
  function trainedConvNet(): ConvNet {
    const net = new ConvNet();
    // one training forward so the BatchNorm running statistics differ from their initial values
    T.tidy(() => net.forward(T.randn([4, 2, 4, 4]).mul(3).add(1)));
    return net;
  }

  test('a state dict loaded into a fresh model gives identical outputs (parameters and buffers)', () => {
    const a = trainedConvNet().eval();
    const b = new ConvNet().eval();
    const x = T.randn([3, 2, 4, 4]);
    const ya = T.noGrad(() => a.forward(x));
    const before = T.noGrad(() => b.forward(x));
    assert.ok(maxAbsDiff(ya, before) > 1e-3, 'the two models should differ before loading');
    const r = b.loadStateDict(a.stateDict());
    assert.deepEqual(r, { missing: [], unexpected: [] });
    const yb = T.noGrad(() => b.forward(x));
    assert.deepEqual(yb.toArray(), ya.toArray());
    assert.deepEqual(b.bn.runningMean.toArray(), a.bn.runningMean.toArray());
    assert.equal(b.bn.numBatchesTracked.item(), 1);
    // loading copies values: the models stay independent
    assert.ok(!b.conv.weight.isSame(a.conv.weight));
    assert.ok(b.parameters().every((p) => p.isLeaf && p.requiresGrad));
  });

  test('strict load lists ALL missing and unexpected keys in one StateDictError', () => {
    const net = new ConvNet();
    const state: Record<string, Tensor> = { ...net.stateDict() };
    delete state['conv.bias'];
    delete state['bn.running_var'];
    state['extra.one'] = T.zeros([1]);
    state['fc.scale'] = T.zeros([2]);
    const e = expectThrows(() => net.loadStateDict(state));
    assert.ok(e instanceof StateDictError, `expected StateDictError, got ${e.name}`);
    assert.deepEqual([...e.missing].sort(), ['bn.running_var', 'conv.bias']);
    assert.deepEqual([...e.unexpected].sort(), ['extra.one', 'fc.scale']);
    for (const k of ['conv.bias', 'bn.running_var', 'extra.one', 'fc.scale']) assert.match(e.message, new RegExp(k.replace('.', '\\.')));
  });

  test('a shape mismatch names the key and both shapes, in strict and non-strict mode', () => {
    const net = new ConvNet();
    const state = { ...net.stateDict(), 'fc.weight': T.zeros([2, 47]) };
    for (const strict of [true, false]) {
      const e = expectThrows(() => net.loadStateDict(state, { strict }));
      assert.ok(e instanceof StateDictError);
      assert.deepEqual(e.mismatched, [{ key: 'fc.weight', expected: [2, 48], got: [2, 47] }]);
      assert.match(e.message, /fc\.weight/);
      assert.match(e.message, /\[2, 48\]/);
      assert.match(e.message, /\[2, 47\]/);
    }
  });

  test('non-strict load ignores extra keys, reports missing and unexpected, and loads what matches', () => {
    const src = trainedConvNet();
    const dst = new ConvNet();
    const state: Record<string, Tensor> = { ...src.stateDict(), 'head.weight': T.zeros([5]) };
    delete state['fc.bias'];
    const fcBiasBefore = dst.fc.bias!.toArray();
    const r = dst.loadStateDict(state, { strict: false });
    assert.deepEqual(r, { missing: ['fc.bias'], unexpected: ['head.weight'] });
    assert.deepEqual(dst.conv.weight.toArray(), src.conv.weight.toArray());
    assert.deepEqual(dst.fc.bias!.toArray(), fcBiasBefore, 'a missing key leaves the value as it was');
  });

  test('a failed load (shape mismatch or strict key error) changes nothing, even keys that matched', () => {
    const src = trainedConvNet();
    const dst = new ConvNet();
    const snapshot = Object.fromEntries(Object.entries(dst.stateDict()).map(([k, t]) => [k, t.toArray()]));
    const check = (): void => {
      for (const [k, t] of Object.entries(dst.stateDict())) assert.deepEqual(t.toArray(), snapshot[k], `${k} changed by a failed load`);
    };
    // every other key is valid and different; one shape is wrong
    const bad = { ...src.stateDict(), 'bn.weight': T.ones([4]) };
    expectThrows(() => dst.loadStateDict(bad, { strict: false }));
    check();
    const missing: Record<string, Tensor> = { ...src.stateDict() };
    delete missing['fc.weight'];
    expectThrows(() => dst.loadStateDict(missing));
    check();
  });

  test("strict load reports keys named like Object.prototype members ('constructor', 'toString') as unexpected", () => {
    const l = new Linear(2, 2);
    const state: Record<string, Tensor> = { ...l.stateDict(), constructor: T.zeros([1]), toString: T.zeros([1]) };
    const e = expectThrows(() => l.loadStateDict(state));
    assert.ok(e instanceof StateDictError);
    assert.deepEqual([...e.unexpected].sort(), ['constructor', 'toString']);
  });

  test('loading converts dtype: a float64 state loads into a float32 model', () => {
    const src = new Linear(3, 2).to('float64');
    const dst = new Linear(3, 2);
    dst.loadStateDict(src.stateDict());
    assert.equal(dst.weight.dtype, 'float32');
    const diff = T.tidy(() => dst.weight.double().sub(src.weight).abs().max().item());
    assert.ok(diff < 1e-7);
  });
});

// ---------------------------------------------------------------------------------------------

describe('Module.to', () => {
  test("to('float64') casts float parameters and buffers, keeps them leaf parameters, re-points the properties", () => {
    const net = new ConvNet();
    const oldWeight = net.conv.weight;
    const ret = net.to('float64');
    assert.ok(ret === net, 'to() returns the module');
    assert.ok(oldWeight.isDisposed, 'the old float32 tensor is released');
    for (const [k, p] of net.namedParameters()) {
      assert.equal(p.dtype, 'float64', k);
      assert.ok(p.isLeaf, `${k} is not a leaf`);
      assert.ok(p.requiresGrad, `${k} does not require grad`);
    }
    const sd = net.stateDict();
    assert.ok(sd['conv.weight'] === net.conv.weight, 'the property and the registered parameter must be the same tensor');
    assert.ok(sd['bn.running_mean'] === net.bn.runningMean);
    assert.equal(net.bn.runningMean.dtype, 'float64');
    assert.equal(net.bn.numBatchesTracked.dtype, 'int64', 'integer buffers are not cast');
    // forward and backward work in float64 and reach the new parameters
    T.tidy(() => {
      const y = net.forward(T.randn([2, 2, 4, 4], { dtype: 'float64' }));
      assert.equal(y.dtype, 'float64');
      y.sum().backward();
    });
    for (const [k, p] of net.namedParameters()) assert.ok(p.grad !== null, `${k} got no gradient after to()`);
  });

  test("to('float64') on MultiheadAttention re-points in_proj_weight and out_proj", () => {
    const m = new MultiheadAttention(4, 2).to('float64');
    assert.ok(m.stateDict()['in_proj_weight'] === m.inProjWeight);
    assert.ok(m.stateDict()['out_proj.weight'] === m.outProj.weight);
    const x = T.randn([1, 3, 4], { dtype: 'float64' });
    assert.equal(m.forward(x, x, x).output.dtype, 'float64');
  });

  test('to() with the current dtype keeps the same tensors', () => {
    const l = new Linear(2, 2);
    const w = l.weight;
    l.to('float32');
    assert.ok(l.weight === w && !w.isDisposed);
  });
});

// ---------------------------------------------------------------------------------------------

describe('layer gradients against central differences (float64, relative error < 1e-5)', () => {
  // Each check passes the layer's own parameter tensors as gradcheck inputs: gradcheck perturbs
  // them in place, so fn — the layer's own forward — sees the perturbation.

  test('Linear: input (3-D), weight and bias', () => {
    const l = new Linear(3, 4).to('float64');
    randomise(l);
    checkGrad('Linear', (x) => l.forward(x), [f64([2, 5, 3]), l.weight, l.bias!]);
  });

  test('Conv2d (stride 2, padding 1): input, weight and bias', () => {
    const c = new Conv2d(2, 3, 3, { stride: 2, padding: 1 }).to('float64');
    checkGrad('Conv2d', (x) => c.forward(x), [f64([2, 2, 5, 5]), c.weight, c.bias!]);
  });

  test('Conv2d / ConvTranspose2d: channels not divisible by groups are refused at construction', () => {
    assert.throws(() => new Conv2d(3, 4, 3, { groups: 2 }), /Conv2d: channels 3→4 not divisible by groups 2/);
    assert.throws(() => new ConvTranspose2d(4, 3, 3, { groups: 2 }), /ConvTranspose2d: channels 4→3 not divisible by groups 2/);
  });

  test('ConvTranspose2d (stride 2): input, weight and bias; output size (H−1)·2 + 3', () => {
    const c = new ConvTranspose2d(2, 3, 3, { stride: 2 }).to('float64');
    const x = f64([1, 2, 3, 3]);
    assert.deepEqual(T.noGrad(() => c.forward(x)).shape, [1, 3, 7, 7]);
    checkGrad('ConvTranspose2d', (v) => c.forward(v), [x, c.weight, c.bias!]);
  });

  test('BatchNorm2d in training mode (batch statistics): input, weight and bias', () => {
    const bn = new BatchNorm2d(3).to('float64');
    randomise(bn, 1);
    bn.train();
    checkGrad('BatchNorm2d', (x) => bn.forward(x), [f64([4, 3, 2, 2]), bn.weight!, bn.bias!]);
  });

  test('LayerNorm over the last two dims: input, weight and bias', () => {
    const ln = new LayerNorm([3, 4]).to('float64');
    randomise(ln, 1);
    checkGrad('LayerNorm', (x) => ln.forward(x), [f64([2, 3, 4]), ln.weight!, ln.bias!]);
  });

  test('Embedding: weight, with repeated indices accumulating', () => {
    const e = new Embedding(5, 3).to('float64');
    const idx = T.tensor([[0, 2, 2], [4, 1, 0]], { dtype: 'int64' });
    checkGrad('Embedding', () => e.forward(idx), [e.weight]);
  });

  test('GELU (exact erf form)', () => {
    const g = new GELU();
    checkGrad('GELU', (x) => g.forward(x), [T.linspace(-3, 3, 13, { dtype: 'float64' }).requiresGrad_()]);
  });

  test('MultiheadAttention: query, key, value and in_proj_weight (output and weights)', () => {
    const m = new MultiheadAttention(4, 2).to('float64');
    randomise(m);
    checkGrad(
      'MultiheadAttention',
      (q, k, v) => {
        const r = m.forward(q, k, v, { needWeights: true, averageAttnWeights: false });
        return T.cat([r.output.flatten(), r.weights!.flatten()]);
      },
      [f64([2, 3, 4]), f64([2, 5, 4]), f64([2, 5, 4]), m.inProjWeight],
    );
  });

  test('ViT Attention block: input, qkv.weight and proj.weight (output and attention weights)', () => {
    const a = new Attention(8, 2, true, 0, 0).to('float64');
    randomise(a);
    checkGrad(
      'Attention',
      (x) => {
        const r = a.forward(x);
        return T.cat([r.out.flatten(), r.attn.flatten()]);
      },
      [f64([2, 5, 8]), a.qkv.weight, a.proj.weight],
    );
  });

  test('a whole tiny ViT (8×8, patch 4, dim 8, depth 1, 2 heads): input and pos_embed', () => {
    const vit = new VisionTransformer({ imageSize: 8, inChannels: 1, patchSize: 4, numClasses: 3, dim: 8, depth: 1, heads: 2 }).to('float64');
    randomise(vit);
    vit.eval();
    checkGrad('ViT', (x) => vit.forward(x).logits, [f64([2, 1, 8, 8]), vit.posEmbed]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('MultiheadAttention semantics (float64)', () => {
  /** softmax(Q_h K_hᵀ/√d) V_h per head with the in_proj chunks, heads concatenated, then out_proj. */
  function manual(m: MultiheadAttention, q: Tensor, k: Tensor, v: Tensor): { output: Tensor; weights: Tensor } {
    const E = m.embedDim;
    const H = m.numHeads;
    const D = E / H;
    const W = m.inProjWeight;
    const b = m.inProjBias!;
    const Q = F.linear(q, W.narrow(0, 0, E), b.narrow(0, 0, E));
    const K = F.linear(k, W.narrow(0, E, E), b.narrow(0, E, E));
    const V = F.linear(v, W.narrow(0, 2 * E, E), b.narrow(0, 2 * E, E));
    const outs: Tensor[] = [];
    const ws: Tensor[] = [];
    for (let h = 0; h < H; h++) {
      const s = Q.narrow(2, h * D, D).matmul(K.narrow(2, h * D, D).transpose(1, 2)).div(Math.sqrt(D));
      const e = s.sub(s.amax(-1, true)).exp();
      const a = e.div(e.sum(-1, true));
      ws.push(a);
      outs.push(a.matmul(V.narrow(2, h * D, D)));
    }
    return { output: F.linear(T.cat(outs, 2), m.outProj.weight, m.outProj.bias), weights: T.stack(ws, 1) };
  }

  function setup(): { m: MultiheadAttention; q: Tensor; k: Tensor; v: Tensor } {
    const m = new MultiheadAttention(6, 3).to('float64');
    randomise(m);
    return { m, q: f64([2, 3, 6], false), k: f64([2, 5, 6], false), v: f64([2, 5, 6], false) };
  }

  test('output and averaged weights equal the by-hand computation to 1e-10 (cross-attention, Nq ≠ Nk)', () => {
    const { m, q, k, v } = setup();
    T.noGrad(() => {
      const got = m.forward(q, k, v, { needWeights: true });
      const want = manual(m, q, k, v);
      assert.ok(maxAbsDiff(got.output, want.output) < 1e-10, `output differs by ${maxAbsDiff(got.output, want.output)}`);
      assert.deepEqual(got.weights!.shape, [2, 3, 5]);
      assert.ok(maxAbsDiff(got.weights!, want.weights.mean(1)) < 1e-10);
    });
  });

  test('averageAttnWeights false returns per-head weights [B, H, Nq, Nk] whose rows sum to 1', () => {
    const { m, q, k, v } = setup();
    T.noGrad(() => {
      const got = m.forward(q, k, v, { needWeights: true, averageAttnWeights: false });
      assert.deepEqual(got.weights!.shape, [2, 3, 3, 5]);
      assert.ok(maxAbsDiff(got.weights!, manual(m, q, k, v).weights) < 1e-10);
      const rowSums = got.weights!.sum(-1);
      assert.ok(maxAbsDiff(rowSums, T.onesLike(rowSums)) < 1e-12);
    });
  });

  test('needWeights false returns no weights', () => {
    const { m, q, k, v } = setup();
    assert.equal(T.noGrad(() => m.forward(q, k, v)).weights, null);
  });

  test('keyPaddingMask gives exactly zero weight to masked keys, and the output equals attention over the unmasked keys only', () => {
    const { m, q, k, v } = setup();
    const mask = T.tensor([[false, false, false, true, true], [true, false, false, false, false]]);
    T.noGrad(() => {
      const got = m.forward(q, k, v, { needWeights: true, averageAttnWeights: false, keyPaddingMask: mask });
      const w = got.weights!; // [2, 3, 3, 5]
      const masked = w.index([T.tensor([0, 0, 1], { dtype: 'int64' }), null, null, T.tensor([3, 4, 0], { dtype: 'int64' })]);
      assert.deepEqual(masked.abs().max().item(), 0);
      const rowSums = w.sum(-1);
      assert.ok(maxAbsDiff(rowSums, T.onesLike(rowSums)) < 1e-12);
      // sample 0 attends to keys 0..2 only; sample 1 to keys 1..4
      const ref0 = m.forward(q.narrow(0, 0, 1), k.narrow(0, 0, 1).narrow(1, 0, 3), v.narrow(0, 0, 1).narrow(1, 0, 3)).output;
      const ref1 = m.forward(q.narrow(0, 1, 1), k.narrow(0, 1, 1).narrow(1, 1, 4), v.narrow(0, 1, 1).narrow(1, 1, 4)).output;
      assert.ok(maxAbsDiff(got.output.narrow(0, 0, 1), ref0) < 1e-12);
      assert.ok(maxAbsDiff(got.output.narrow(0, 1, 1), ref1) < 1e-12);
    });
  });

  test('a boolean causal attnMask zeroes the weights above the diagonal, and the additive −inf mask gives the same result', () => {
    const { m, q } = setup();
    const x = q; // self-attention, N = 3
    const causal = T.ones([3, 3]).triu(1).bool();
    const additive = T.zeros([3, 3], { dtype: 'float64' }).maskedFill(causal, -Infinity);
    T.noGrad(() => {
      const a = m.forward(x, x, x, { needWeights: true, averageAttnWeights: false, attnMask: causal });
      const b = m.forward(x, x, x, { needWeights: true, averageAttnWeights: false, attnMask: additive });
      const above = a.weights!.mul(causal.double()).abs().max().item();
      assert.equal(above, 0);
      assert.ok(maxAbsDiff(a.weights!, b.weights!) < 1e-15);
      assert.ok(maxAbsDiff(a.output, b.output) < 1e-15);
      // the first query sees only the first key: its weight is exactly 1
      assert.deepEqual(a.weights!.select(2, 0).select(2, 0).toArray(), Array(6).fill(1));
    });
  });

  test('parameter names and shapes follow torch.nn.MultiheadAttention', () => {
    const m = new MultiheadAttention(6, 3);
    const shapes = Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, t.shape]));
    assert.deepEqual(shapes, { in_proj_weight: [18, 6], in_proj_bias: [18], 'out_proj.weight': [6, 6], 'out_proj.bias': [6] });
    assert.throws(() => new MultiheadAttention(6, 4), /not divisible/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('initialisers', () => {
  // Independent erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7) for the expected statistics.
  function erfAS(x: number): number {
    const s = Math.sign(x);
    const z = Math.abs(x);
    const t = 1 / (1 + 0.3275911 * z);
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
    return s * y;
  }
  const phi = (x: number): number => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
  const Phi = (x: number): number => (1 + erfAS(x / Math.SQRT2)) / 2;

  function stats(t: Tensor): { min: number; max: number; mean: number; std: number; maxAbs: number } {
    return T.tidy(() => ({
      min: t.min().item(),
      max: t.max().item(),
      mean: t.double().mean().item(),
      std: t.double().std().item(),
      maxAbs: t.abs().max().item(),
    }));
  }

  test('erf matches reference values', () => {
    const ref: [number, number][] = [[0, 0], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [-1.5, -0.9661051464753108], [2, 0.9953222650189527], [3, 0.9999779095030014]];
    for (const [x, e] of ref) assert.ok(Math.abs(init.erf(x) - e) < 2e-7, `erf(${x}) = ${init.erf(x)}, expected ${e}`);
  });

  for (const [mean, std, a, b] of [[0, 1, -2, 2], [1, 2, -1, 4], [0, 0.02, -2, 2]] as const) {
    test(`truncNormal_(std ${std}, mean ${mean}, [${a}, ${b}]): all samples in [a, b], mean and std match the truncated-normal formulas within 2%`, () => {
      const t = T.empty([200_000]);
      init.truncNormal_(t, std, mean, a, b);
      const s = stats(t);
      assert.ok(s.min >= a && s.max <= b, `samples outside [${a}, ${b}]: min ${s.min}, max ${s.max}`);
      const al = (a - mean) / std;
      const be = (b - mean) / std;
      const Z = Phi(be) - Phi(al);
      const expMean = mean + (std * (phi(al) - phi(be))) / Z;
      const expStd = std * Math.sqrt(1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2);
      assert.ok(Math.abs(s.std - expStd) < 0.02 * expStd, `std ${s.std}, expected ${expStd}`);
      assert.ok(Math.abs(s.mean - expMean) < 0.02 * expStd, `mean ${s.mean}, expected ${expMean}`);
      // the sample reaches close to the bounds that actually truncate (within 0.5 std of them)
      if (al > -3) assert.ok(s.min < a + 0.5 * std, `min ${s.min} far from the lower bound ${a}`);
      if (be < 3) assert.ok(s.max > b - 0.5 * std, `max ${s.max} far from the upper bound ${b}`);
    });
  }

  test('fans: Linear [out, in] and Conv [out, in/groups, kh, kw] weights', () => {
    assert.deepEqual(init.fans(new Linear(3, 4).weight), { fanIn: 3, fanOut: 4 });
    assert.deepEqual(init.fans(new Conv2d(2, 3, [3, 5]).weight), { fanIn: 2 * 15, fanOut: 3 * 15 });
    assert.deepEqual(init.fans(new Conv2d(4, 6, 3, { groups: 2 }).weight), { fanIn: 2 * 9, fanOut: 6 * 9 });
    assert.throws(() => init.fans(T.zeros([5])), /at least 2 dims/);
  });

  test('kaimingUniform_ (relu): |w| ≤ gain·√(3/fan_in) = √2·√(3/64), and the bound is approached', () => {
    const t = T.empty([256, 64]);
    init.kaimingUniform_(t, { nonlinearity: 'relu' });
    const bound = Math.SQRT2 * Math.sqrt(3 / 64);
    const s = stats(t);
    assert.ok(s.maxAbs <= bound * (1 + 1e-6), `max |w| ${s.maxAbs} > bound ${bound}`);
    assert.ok(s.maxAbs > 0.99 * bound, `max |w| ${s.maxAbs} does not approach the bound ${bound}`);
    // uniform on [−B, B] has std B/√3
    assert.ok(Math.abs(s.std - bound / Math.sqrt(3)) < 0.02 * bound / Math.sqrt(3));
  });

  test("Linear's default init (kaiming_uniform a=√5) gives weights in ±1/√in and bias in ±1/√in, as torch", () => {
    const l = new Linear(64, 512);
    const bound = 1 / Math.sqrt(64);
    const w = stats(l.weight);
    assert.ok(w.maxAbs <= bound * (1 + 1e-6) && w.maxAbs > 0.99 * bound, `weight max |w| ${w.maxAbs}, bound ${bound}`);
    const b = stats(l.bias!);
    assert.ok(b.maxAbs <= bound * (1 + 1e-6) && b.maxAbs > 0.9 * bound, `bias max |b| ${b.maxAbs}, bound ${bound}`);
  });

  test('xavierUniform_: |w| ≤ gain·√(6/(fan_in + fan_out)), and the bound is approached', () => {
    const t = T.empty([100, 50, 3, 3]);
    init.xavierUniform_(t, 2);
    const bound = 2 * Math.sqrt(6 / (50 * 9 + 100 * 9));
    const s = stats(t);
    assert.ok(s.maxAbs <= bound * (1 + 1e-6), `max |w| ${s.maxAbs} > bound ${bound}`);
    assert.ok(s.maxAbs > 0.99 * bound);
  });
});

// ---------------------------------------------------------------------------------------------

describe('Dropout', () => {
  test('Dropout is the identity in eval mode', () => {
    const d = new Dropout(0.5).eval();
    const x = T.randn([1000]);
    assert.deepEqual(d.forward(x).toArray(), x.toArray());
  });

  test('Dropout(0.5) in training zeroes about half the elements and doubles the rest', () => {
    const d = new Dropout(0.5);
    const y = d.forward(T.ones([20_000]));
    const vals = y.toArray();
    assert.ok(vals.every((v) => v === 0 || v === 2), 'values must be 0 or 1/(1−p) = 2');
    const zeros = vals.filter((v) => v === 0).length / vals.length;
    assert.ok(Math.abs(zeros - 0.5) < 0.03, `fraction dropped ${zeros}`);
  });

  test('Dropout rejects p outside [0, 1)', () => {
    assert.throws(() => new Dropout(1), RangeError);
    assert.throws(() => new Dropout(-0.1), RangeError);
  });
});

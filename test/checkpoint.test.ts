// Checkpoints (weights .safetensors + config .json) and the tensor <-> safetensors bridge.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as T from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { StateDictError } from '../src/nn/index.js';
import { createModel, PRESETS } from '../src/models/registry.js';
import { checkpointPaths, loadCheckpointInto, loadTensors, readCheckpointConfig, saveCheckpoint, saveTensors } from '../src/export/checkpoint.js';

T.manualSeed(11);
// Small tensors: one intra-op thread is fastest and immune to OpenMP spin-waiting on a busy machine.
T.setNumThreads(1);

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'checkpoint-test-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));
let counter = 0;
const fresh = (name = 'model'): string => path.join(TMP, `case${counter++}`, name);

/** The raw bytes of a tensor's values (float16/bfloat16 as their bit patterns). */
function bytes(t: Tensor): Buffer {
  const d = t.data();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    return e;
  }
  assert.fail('expected an exception');
}

const input = (name: string, n = 2): Tensor => {
  const c = PRESETS[name]!.config;
  return T.randn([n, c.inChannels, c.imageSize, c.imageSize]);
};

// ---------------------------------------------------------------------------------------------

describe('saveCheckpoint / loadCheckpointInto', () => {
  test('a checkpoint loaded into a fresh model of the same preset gives bit-identical outputs', () => {
    const base = fresh();
    const a = createModel('vit-tiny-28').eval();
    saveCheckpoint(base, a, { preset: 'vit-tiny-28' });
    const { weights, config } = checkpointPaths(base);
    assert.ok(fs.existsSync(weights) && fs.existsSync(config));

    const b = createModel('vit-tiny-28').eval();
    const x = input('vit-tiny-28');
    const ya = T.noGrad(() => a.forward(x).logits);
    assert.notDeepEqual(bytes(T.noGrad(() => b.forward(x).logits)), bytes(ya), 'two fresh models should differ before loading');
    const extra = loadCheckpointInto(base, b);
    assert.deepEqual(extra, {});
    const yb = T.noGrad(() => b.forward(x).logits);
    assert.ok(bytes(yb).equals(bytes(ya)), 'outputs are not bit-identical');
    for (const [k, t] of Object.entries(a.stateDict())) assert.ok(bytes(b.stateDict()[k]!).equals(bytes(t)), `${k} differs`);
    assert.ok(b.parameters().every((p) => p.isLeaf && p.requiresGrad), 'loaded parameters must stay trainable leaves');
  });

  test('the JSON config round trips (nested objects, arrays, numbers, unicode)', () => {
    const base = fresh();
    const cfg = { preset: 'vit-tiny-28', config: PRESETS['vit-tiny-28']!.config, history: [0.5, 0.25, 1e-8], note: 'tête-à-tête ✓', nested: { a: null, b: [true, false] } };
    saveCheckpoint(base, createModel('vit-tiny-28'), cfg);
    assert.deepEqual(readCheckpointConfig(base), cfg);
    // the base may be given with either extension
    assert.deepEqual(readCheckpointConfig(`${base}.safetensors`), cfg);
    assert.deepEqual(checkpointPaths(`${base}.json`), checkpointPaths(base));
  });

  test('extra tensors under a prefix come back separately; the model still loads strictly', () => {
    const base = fresh();
    const a = createModel('vit-tiny-28');
    const extra = {
      'optim.step': T.tensor([123], { dtype: 'int64' }),
      'optim.exp_avg.head.weight': T.randn([10, 64], { dtype: 'float64' }),
    };
    saveCheckpoint(base, a, {}, extra);
    const b = createModel('vit-tiny-28');
    const got = loadCheckpointInto(base, b, ['optim.']);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(extra).sort());
    for (const [k, t] of Object.entries(extra)) {
      assert.equal(got[k]!.dtype, t.dtype, k);
      assert.deepEqual(got[k]!.shape, t.shape, k);
      assert.ok(bytes(got[k]!).equals(bytes(t)), `${k} values differ`);
    }
    assert.ok(bytes(b.stateDict()['head.weight']!).equals(bytes(a.stateDict()['head.weight']!)));
    // without the prefix the extras are unexpected keys, not silently ignored
    const e = errorOf(() => loadCheckpointInto(base, createModel('vit-tiny-28')));
    assert.ok(e instanceof StateDictError);
    assert.deepEqual([...e.unexpected].sort(), Object.keys(extra).sort());
  });

  test('a failed load frees every tensor it read, the extras included', () => {
    const base = fresh();
    saveCheckpoint(base, createModel('vit-tiny-28'), {}, { 'optim.step': T.tensor([1], { dtype: 'int64' }) });
    const other = createModel('lenet5-28');
    const before = T.liveTensors();
    assert.throws(() => loadCheckpointInto(base, other, ['optim.']), StateDictError);
    assert.equal(T.liveTensors(), before, 'tensors leaked by the failed load');
  });

  test('loading into a different preset fails with a StateDictError naming the weights file and every mismatched key, and changes nothing', () => {
    const base = fresh();
    const src = createModel('vit-tiny-28');
    saveCheckpoint(base, src, {});
    const dst = createModel('vit-teacher-28');
    const before = Object.fromEntries(Object.entries(dst.stateDict()).map(([k, t]) => [k, bytes(t)]));

    // what the error must report, worked out from the two state dicts
    const s = src.stateDict();
    const d = dst.stateDict();
    const missing = Object.keys(d).filter((k) => !(k in s));
    const unexpected = Object.keys(s).filter((k) => !(k in d));
    const mismatched = Object.keys(d).filter((k) => k in s && s[k]!.shape.join() !== d[k]!.shape.join());
    assert.ok(mismatched.length > 0, 'the presets should differ in some shape');

    const e = errorOf(() => loadCheckpointInto(base, dst));
    assert.ok(e instanceof StateDictError, `expected a StateDictError, got ${e.name}: ${e.message}`);
    const { weights } = checkpointPaths(base);
    assert.ok(e.message.includes(weights), `message does not name ${weights}: ${e.message}`);
    assert.deepEqual([...e.missing].sort(), missing.sort());
    assert.deepEqual([...e.unexpected].sort(), unexpected.sort());
    assert.deepEqual(e.mismatched.map((m) => m.key).sort(), mismatched.sort());
    for (const k of [...missing, ...unexpected, ...mismatched]) assert.ok(e.message.includes(k), `message does not name ${k}`);
    const pe = e.mismatched.find((m) => m.key === 'pos_embed');
    if (pe) {
      assert.deepEqual(pe.expected, d['pos_embed']!.shape);
      assert.deepEqual(pe.got, s['pos_embed']!.shape);
    }
    for (const [k, t] of Object.entries(dst.stateDict())) assert.ok(bytes(t).equals(before[k]!), `${k} changed by a failed load`);
  });

  test('a truncated .safetensors file gives an error naming the file', () => {
    const base = fresh();
    saveCheckpoint(base, createModel('vit-tiny-28'), {});
    const { weights } = checkpointPaths(base);
    const size = fs.statSync(weights).size;
    for (const keep of [Math.floor(size / 2), 20, 4]) {
      fs.truncateSync(weights, keep);
      const e = errorOf(() => loadCheckpointInto(base, createModel('vit-tiny-28')));
      assert.ok(e.message.includes(weights), `truncated to ${keep} bytes: message does not name the file: ${e.message}`);
      assert.ok(!(e instanceof StateDictError), 'a damaged file is not a key mismatch');
    }
  });

  test('a missing checkpoint gives a clear error naming the expected files', () => {
    const base = fresh('absent');
    const { weights, config } = checkpointPaths(base);
    const e = errorOf(() => loadCheckpointInto(base, createModel('vit-tiny-28')));
    assert.ok(e.message.includes(weights) && /not found/.test(e.message), e.message);
    const c = errorOf(() => readCheckpointConfig(base));
    assert.ok(c.message.includes(config) && /not found/.test(c.message), c.message);
  });

  test('an invalid JSON config gives an error naming the file; a checkpoint reads its embedded config, not a damaged mirror', () => {
    const base = fresh();
    const m = createModel('vit-tiny-28');
    saveCheckpoint(base, m, { ok: true });
    const { config, weights } = checkpointPaths(base);
    fs.writeFileSync(config, '{"ok": tru');
    assert.deepEqual(readCheckpointConfig(base), { ok: true });
    // A model card written beside plain weights (no embedded config): the .json is the config.
    saveTensors(weights, m.stateDict());
    const e = errorOf(() => readCheckpointConfig(base));
    assert.ok(e.message.includes(config) && /JSON/.test(e.message), e.message);
  });
});

// ---------------------------------------------------------------------------------------------

describe('saveTensors / loadTensors', () => {
  test('float32/float64/int64/uint8/bool/float16/bfloat16/int32 tensors round trip bit-exactly (dtype, shape, bytes)', () => {
    const f16 = T.tensor(new Uint16Array([0x3c00, 0x8000, 0x7c00, 0xfc00, 0x0001, 0x7bff, 0x7e00, 0x3555]), { dtype: 'float16', shape: [2, 4] });
    const bf16 = T.tensor(new Uint16Array([0x3f80, 0x8000, 0x7f80, 0x0001, 0x7fc0, 0xc2f7]), { dtype: 'bfloat16', shape: [6] });
    const tensors: Record<string, Tensor> = {
      f32: T.tensor(new Float32Array([0, -0, 1.5, NaN, Infinity, -Infinity, 1e-45, 3.4e38]), { shape: [2, 4] }),
      f64: T.tensor(new Float64Array([Math.PI, -0, NaN, 5e-324, Number.MAX_VALUE, -1]), { shape: [3, 2] }),
      i64: T.tensor(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, 9007199254740993n])),
      u8: T.tensor(new Uint8Array([0, 1, 127, 128, 255]), { dtype: 'uint8' }),
      bool: T.tensor([[true, false, false], [false, true, true]]),
      f16,
      bf16,
      i32: T.tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 7])),
      scalar: T.tensor(2.5, { dtype: 'float64' }),
    };
    const file = `${fresh('tensors')}.safetensors`;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    saveTensors(file, tensors, { note: 'round trip' });
    const { tensors: back, metadata } = loadTensors(file);
    assert.equal(metadata['note'], 'round trip');
    assert.deepEqual(Object.keys(back).sort(), Object.keys(tensors).sort());
    for (const [k, t] of Object.entries(tensors)) {
      const b = back[k]!;
      assert.equal(b.dtype, t.dtype, `${k} dtype`);
      assert.deepEqual(b.shape, t.shape, `${k} shape`);
      assert.ok(bytes(b).equals(bytes(t)), `${k}: bytes differ: ${bytes(b).toString('hex')} vs ${bytes(t).toString('hex')}`);
    }
    // bool is stored as 0/1 bytes and compares as booleans
    assert.deepEqual(back['bool']!.toArray(), [1, 0, 0, 0, 1, 1]);
  });

  test('an empty tensor (shape [2, 0]) round trips with its shape', () => {
    const file = `${fresh('empty')}.safetensors`;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    saveTensors(file, { e: T.zeros([2, 0]), x: T.ones([3]) });
    const { tensors } = loadTensors(file);
    assert.deepEqual(tensors['e']!.shape, [2, 0]);
    assert.equal(tensors['e']!.dtype, 'float32');
    assert.deepEqual(tensors['x']!.toArray(), [1, 1, 1]);
  });

  test('a non-contiguous tensor (a transpose) is saved in logical row-major order', () => {
    const file = `${fresh('strided')}.safetensors`;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const t = T.arange(0, 6, 1, { dtype: 'float32' }).view([2, 3]).t(); // [[0,3],[1,4],[2,5]]
    saveTensors(file, { t });
    const { tensors } = loadTensors(file);
    assert.deepEqual(tensors['t']!.shape, [3, 2]);
    assert.deepEqual(tensors['t']!.toArray(), [0, 3, 1, 4, 2, 5]);
  });

  test('loading a missing file gives an error naming the path', () => {
    const file = path.join(TMP, 'nowhere', 'none.safetensors');
    const e = errorOf(() => loadTensors(file));
    assert.ok(e.message.includes(file) && /not found/.test(e.message), e.message);
  });
});

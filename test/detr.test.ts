// The DETR detector: shapes, analytic params = built params, cross-attention maps, aux outputs,
// sine position embedding values, presets, bad input.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { anchorSineEmbedding, createDetector, describeDetector, detectorConfig, detrCosts, DETR, DETR_PRESETS, sinePositionEmbedding } from '../src/models/detr.js';
import { summarize } from '../src/models/flops.js';

T.setNumThreads(1);
T.manualSeed(3);

const tiny = (): DETR => new DETR({ imageSize: 16, inChannels: 1, patchSize: 4, numClasses: 3, dim: 16, encoderDepth: 2, decoderDepth: 3, heads: 2, numQueries: 5 });

describe('DETR', () => {
  test('outputs: logits [B, Q, C+1], boxes in (0, 1), aux per earlier layer in training only', () => {
    const m = tiny();
    const x = T.randn([2, 1, 16, 16]);
    const o = m.forward(x, { returnAttention: true });
    assert.deepEqual(o.logits.shape, [2, 5, 4]);
    assert.deepEqual(o.boxes.shape, [2, 5, 4]);
    assert.ok(o.boxes.min().item() > 0 && o.boxes.max().item() < 1);
    assert.equal(o.aux.length, 2);
    assert.deepEqual(o.aux[0]!.logits.shape, [2, 5, 4]);
    // Cross-attention of every decoder layer over the 16 patch tokens, rows are distributions.
    assert.equal(o.crossAttentions!.length, 3);
    assert.deepEqual(o.crossAttentions![2]!.shape, [2, 5, 16]);
    const rowSums = o.crossAttentions![1]!.sum(-1).toArray();
    rowSums.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-5));
    m.eval();
    const e = m.forward(x);
    assert.equal(e.aux.length, 0);
    assert.equal(e.crossAttentions, undefined);
    assert.equal(m.forward(x, { aux: true }).aux.length, 2);
    // The final layer of training and eval mode agree (no dropout).
    m.train();
    const diff = m.forward(x).logits.sub(e.logits).abs().max().item();
    assert.ok(diff < 1e-6);
  });

  test('queries are distinct outputs and each image is independent of the others in the batch', () => {
    const m = tiny().eval();
    const x = T.randn([3, 1, 16, 16]);
    const all = m.forward(x).boxes;
    const one = m.forward(x.narrow(0, 1, 1)).boxes;
    assert.ok(all.narrow(0, 1, 1).sub(one).abs().max().item() < 1e-5);
  });

  test('presets: analytic params equal the built model, FLOPs documented, student much smaller', () => {
    for (const name of Object.keys(DETR_PRESETS)) {
      const m = createDetector(name);
      const d = describeDetector(name);
      assert.equal(d.params, m.numParameters(), name);
      assert.ok(d.flops > 0);
      m.dispose();
    }
    const t = describeDetector('detr-teacher-64');
    const s = describeDetector('detr-student-64');
    assert.ok(t.flops / s.flops > 4, `teacher/student FLOPs ${t.flops / s.flops}`);
    assert.equal(describeDetector('detr-teacher-64', { numClasses: 3 }).params < t.params, true);
    assert.throws(() => createDetector('detr-huge'), /unknown detector preset 'detr-huge'; available: detr-teacher-64, detr-student-64/);
    assert.throws(() => detectorConfig('detr-teacher-64', { depth: 3 } as never), /has no option depth/);
  });

  test('sine position embedding: DETR values at a grid point', () => {
    // grid 2, dim 8: half 4; y index 0 → embed (0+1)/(2+1e-6)·2π; i=0: sin(e), i=1: cos(e),
    // i=2: sin(e / 10000^(2/4)), i=3: cos(e / 100).
    const pe = sinePositionEmbedding(2, 8);
    const e = (1 / (2 + 1e-6)) * 2 * Math.PI;
    const e2 = (2 / (2 + 1e-6)) * 2 * Math.PI;
    const expectRow1 = [Math.sin(e), Math.cos(e), Math.sin(e / 100), Math.cos(e / 100), Math.sin(e2), Math.cos(e2), Math.sin(e2 / 100), Math.cos(e2 / 100)];
    // token 1 = (y 0, x 1)
    Array.from(pe.subarray(8, 16)).forEach((v, i) => assert.ok(Math.abs(v - expectRow1[i]!) < 1e-6, `${i}: ${v} vs ${expectRow1[i]}`));
    assert.throws(() => sinePositionEmbedding(2, 6), /multiple of 4/);
  });

  test('anchor queries and the conv stem: analytic params = built, outputs valid, refinement per layer', () => {
    const base = { imageSize: 16, inChannels: 1, patchSize: 4, numClasses: 3, dim: 16, encoderDepth: 1, decoderDepth: 3, heads: 2, numQueries: 5 };
    for (const extra of [{ anchors: true }, { stem: 'conv' as const }, { anchors: true, stem: 'conv' as const }]) {
      const cfg = { ...base, ...extra };
      const m = new DETR(cfg);
      assert.equal(summarize(detrCosts(cfg)).params, m.numParameters(), JSON.stringify(extra));
      const o = m.forward(T.randn([2, 1, 16, 16]), { returnAttention: true });
      assert.deepEqual(o.boxes.shape, [2, 5, 4]);
      assert.ok(o.boxes.min().item() > 0 && o.boxes.max().item() < 1);
      assert.equal(o.aux.length, 2);
      assert.equal(o.crossAttentions!.length, 3);
    }
    // Refinement: with anchors, the first layer's boxes stay near the anchors (small content queries).
    const m = new DETR({ ...base, anchors: true }).eval();
    const o = m.forward(T.randn([1, 1, 16, 16]), { aux: true });
    const anchors = m.anchorLogits!.sigmoid();
    assert.ok(o.aux[0]!.boxes.select(0, 0).sub(anchors).abs().max().item() < 0.2);
    assert.throws(() => new DETR({ ...base, patchSize: 3, imageSize: 15, stem: 'conv' }), /power-of-two patch size/);
  });

  test('anchor sine embedding: DETR-style sin/cos of each coordinate', () => {
    // dim 8: per coordinate one frequency (1), values sin(2πv), cos(2πv).
    const e = anchorSineEmbedding(T.tensor([[0.25, 0.5, 0.125, 0]]), 8).toArray();
    const want = [0.25, 0.5, 0.125, 0].flatMap((v) => [Math.sin(2 * Math.PI * v), Math.cos(2 * Math.PI * v)]);
    e.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `${i}: ${v} vs ${want[i]}`));
  });

  test('bad input is a clear error', () => {
    assert.throws(() => tiny().forward(T.randn([1, 3, 16, 16])), /expected input \[B, 1, 16, 16\], got \[1, 3, 16, 16\]/);
    assert.throws(() => new DETR({ imageSize: 15, inChannels: 1, patchSize: 4, numClasses: 2, dim: 16, encoderDepth: 1, decoderDepth: 1, heads: 2, numQueries: 3 }), /not a multiple of patch size/);
  });

  test('state dict: no position buffer saved, round trip gives the same outputs', () => {
    const a = tiny().eval();
    const b = tiny().eval();
    const sd = a.stateDict();
    assert.ok(!Object.keys(sd).some((k) => k.includes('pos_embed')));
    assert.ok(Object.keys(sd).includes('query_embed') && Object.keys(sd).includes('decoder.0.cross_attn.in_proj_weight'));
    b.loadStateDict(sd);
    const x = T.randn([1, 1, 16, 16]);
    assert.ok(a.forward(x).boxes.sub(b.forward(x).boxes).abs().max().item() === 0);
  });
});

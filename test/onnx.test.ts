// ONNX export: every classifier family and every DETR variant exported, loaded in onnxruntime-node
// and compared with the libtorch model (max abs ≤ 1e-4) on real MNIST test digits; accuracy through ONNX Runtime equals
// vit-dfkd's for the shipped teachers; graph-builder values vs hand-worked fixtures; bad input.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '../src/index.js';
import { loadMnist } from '../src/data/mnist.js';
import { createModel } from '../src/models/registry.js';
import { loadClassifier } from '../src/models/load.js';
import { evaluateClassifier } from '../src/train/classifier.js';
import type { Classifier } from '../src/models/types.js';
import { classifierToOnnx, type ExportCard } from '../src/export/onnx.js';
import { OnnxGraph, decodeModel, metadataOf, onnx } from '../src/export/onnx-graph.js';
import { classifierParity, detectorParity, evaluateOnnx, evaluateOnnxDetector, loadOnnx, maxAbsDiff, ort, runOnnx, torchPredictions } from '../src/export/ort.js';
import { anchorSineEmbeddingGraph, detectorToOnnx, inverseSigmoidGraph } from '../src/export/onnx-detr.js';
import { anchorSineEmbedding, createDetector, type DetrConfig } from '../src/models/detr.js';
import { canvasImages, canvasSource, canvasTargets, composeCanvases } from '../src/data/canvas.js';
import { evaluateDetector, predict } from '../src/detect/evaluate.js';
import { normalize } from '../src/data/augment.js';
import { saveCheckpoint } from '../src/export/checkpoint.js';

T.setNumThreads(1);
const REPO = join(import.meta.dirname, '..', '..');
const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');
const TOL = 1e-4;
const tmp = mkdtempSync(join(tmpdir(), 'dfkd-onnx-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const test28 = loadMnist('test');
/** 64 real MNIST test digits (pixels in [0, 1]). */
const digits = test28.images.narrow(0, 0, 64);

function card(m: Classifier, mean = 0.1307, std = 0.3081): ExportCard {
  const [c] = m.inputShape;
  return { preset: 'test', classNames: Array.from({ length: m.numClasses }, (_, i) => `c${i}`), mean: new Array(c).fill(mean), std: new Array(c).fill(std), dataset: 'mnist' };
}

/**
 * Random weights of a realistic scale (a freshly initialised ViT has near-zero logits, which would
 * make a max-abs check trivially small) and random BatchNorm statistics.
 */
function randomize(m: Classifier, seed: number): void {
  T.manualSeed(seed);
  T.noGrad(() => {
    for (const [name, p] of m.namedParameters()) {
      if (p.ndim === 1 && !name.endsWith('bias')) p.copy_(T.randn(p.shape).mul(0.1).add(1)); // norm scales
      else p.copy_(T.randn(p.shape).mul(name.endsWith('bias') ? 0.1 : Math.sqrt(3 / (p.numel() / p.size(0))))); // a little above He init
    }
    for (const [name, b] of m.namedBuffers()) {
      if (name.endsWith('running_mean')) b.copy_(T.randn(b.shape).mul(0.1));
      if (name.endsWith('running_var')) b.copy_(T.rand(b.shape).add(0.5));
    }
  });
  m.eval();
}

async function parity(m: Classifier, images: T.Tensor, o: Parameters<typeof classifierToOnnx>[2] = {}) {
  const { bytes, info } = classifierToOnnx(m, card(m), { dynamicBatch: true, ...o });
  const loaded = await loadOnnx(bytes);
  const r = await classifierParity(m, loaded, images);
  await loaded.session.release();
  return { ...r, info, bytes };
}

/** Logit spread, to show the parity check compares outputs of a real scale. */
function logitRange(m: Classifier, x: T.Tensor): number {
  return T.inferenceMode(() => T.tidy(() => m.forward(x).logits.abs().max().item()));
}

describe('ONNX export → onnxruntime-node parity, every family (real MNIST test digits)', () => {
  const cases: [string, string, Record<string, unknown>, Parameters<typeof classifierToOnnx>[2]?][] = [
    ['ViT', 'vit-student-28', {}],
    ['ViT, the operator-for-operator graph (vitLayout tokens)', 'vit-student-28', {}, { vitLayout: 'tokens' }],
    ['ViT with one head (rows without transposes)', 'vit-student-28-fast', {}],
    ['DeiT (distillation token)', 'vit-student-28', { distToken: true }],
    ['DeiT (distillation token), vitLayout tokens', 'vit-student-28', { distToken: true }, { vitLayout: 'tokens' }],
    ['DeiT with one head', 'vit-student-28-fast', { distToken: true }],
    ['LeNet-5', 'lenet5-28', {}],
    ['LeNet-5-Half', 'lenet5-half-28', {}],
  ];
  for (const [label, preset, overrides, exportOptions] of cases) {
    test(`${label}: max |Δlogits| ≤ 1e-4, same predictions`, async () => {
      const m = createModel(preset, overrides as never);
      randomize(m, 1);
      const range = logitRange(m, digits);
      assert.ok(range > 1, `logits of a real scale (max |logit| ${range})`);
      const r = await parity(m, digits, exportOptions);
      assert.equal(r.images, 64);
      assert.ok(r.maxAbsLogits <= TOL, `max |Δlogits| ${r.maxAbsLogits}`);
      assert.equal(r.argmaxDisagreements, 0);
      if (preset.startsWith('vit')) {
        assert.ok(r.maxAbsAttention !== undefined && r.maxAbsAttention <= TOL, `max |Δattention| ${r.maxAbsAttention}`);
        assert.deepEqual(r.info.outputs.map((o) => o.name), ['logits', 'attention']);
        assert.deepEqual(r.info.outputs[1]!.dims, ['batch', 49]);
      }
    });
  }

  test('CIFAR ResNet (BatchNorm with random running statistics, shortcut convs; narrow widths): parity', async () => {
    // Same code path as ResNet-18/34, narrowed so the test stays fast; digits padded to 32×32×3.
    const m = createModel('resnet18-cifar', { widths: [8, 16, 16, 32], blocks: [1, 2, 1, 1] } as never);
    randomize(m, 2);
    const x = T.tidy(() => T.F.pad(digits, [2, 2, 2, 2]).expand([64, 3, 32, 32]).contiguous());
    const range = logitRange(m, x);
    assert.ok(range > 1 && range < 1000, `max |logit| ${range}`);
    const r = await parity(m, x);
    x.dispose();
    assert.ok(r.maxAbsLogits <= TOL, `max |Δlogits| ${r.maxAbsLogits}`);
    assert.equal(r.argmaxDisagreements, 0);
    const ops = new Set(decodeModel(r.bytes).graph!.node!.map((n) => n.opType));
    assert.ok(ops.has('BatchNormalization') && ops.has('GlobalAveragePool'));
  });

  for (const opset of [13, 16, 18, 21]) {
    test(`ViT at opset ${opset} (LayerNorm ${opset >= 17 ? 'operator' : 'spelled out'}, ReduceMean axes as ${opset >= 18 ? 'input' : 'attribute'}): parity`, async () => {
      const m = createModel('vit-student-28', { distToken: true } as never);
      randomize(m, 3);
      const r = await parity(m, digits, { opset });
      assert.ok(r.maxAbsLogits <= TOL && (r.maxAbsAttention ?? 0) <= TOL, `${r.maxAbsLogits} ${r.maxAbsAttention}`);
      const proto = decodeModel(r.bytes);
      assert.equal(Number(proto.opsetImport![0]!.version), opset);
      assert.equal(proto.graph!.node!.some((n) => n.opType === 'LayerNormalization'), opset >= 17);
    });
  }

  test('normalisation folded (pixels in) and external (normalised input) give the same logits', async () => {
    const m = createModel('lenet5-half-28');
    randomize(m, 4);
    const folded = await loadOnnx(classifierToOnnx(m, card(m), { dynamicBatch: true }).bytes);
    const external = await loadOnnx(classifierToOnnx(m, card(m), { dynamicBatch: true, foldNormalization: false }).bytes);
    assert.equal(folded.normalization, 'folded');
    assert.equal(external.normalization, 'external');
    const a = (await runOnnx(folded, digits)).logits!.data;
    const b = (await runOnnx(external, digits)).logits!.data; // runOnnx normalises for 'external' files
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5);
    // Fed raw pixels, the external-normalisation file gives other logits: the fold is really in the graph.
    const O = await ort();
    const raw = await external.session.run({ input: new O.Tensor('float32', digits.narrow(0, 0, 1).contiguous().data() as Float32Array, [1, 1, 28, 28]) });
    assert.ok(Math.abs((raw.logits!.data as Float32Array)[0]! - a[0]!) > 1e-3);
  });

  test('a fixed batch is fixed in the file; runOnnx pads the last chunk', async () => {
    const m = createModel('lenet5-28');
    randomize(m, 5);
    const { bytes, info } = classifierToOnnx(m, card(m), { batch: 8 });
    assert.deepEqual(info.inputs[0]!.dims, [8, 1, 28, 28]);
    const loaded = await loadOnnx(bytes);
    assert.equal(loaded.fixedBatch, 8);
    const r = await classifierParity(m, loaded, digits.narrow(0, 0, 13)); // 8 + 5 (padded)
    assert.ok(r.maxAbsLogits <= TOL);
    const O = await ort();
    await assert.rejects(loaded.session.run({ input: new O.Tensor('float32', new Float32Array(2 * 784), [2, 1, 28, 28]) }), /dimension|Got invalid/i);
  });
});

describe('DETR detector → onnxruntime-node parity (real MNIST test digits on 64×64 canvases)', () => {
  // The presets as they are (anchor queries with box refinement, conv stem), plain DETR through the
  // overrides, and the two mixed variants.
  const PLAIN = { anchors: false, stem: 'patch' } as const;
  const cases: [string, number, Partial<DetrConfig>][] = [
    ['detr-student-64', 17, {}], ['detr-student-64', 13, {}], ['detr-teacher-64', 17, {}],
    ['detr-student-64', 17, PLAIN], ['detr-student-64', 13, PLAIN], ['detr-teacher-64', 17, PLAIN],
    ['detr-student-64', 17, { anchors: true, stem: 'patch' }], ['detr-student-64', 17, { anchors: false, stem: 'conv' }],
  ];
  for (const [preset, opset, overrides] of cases) {
    const variant = Object.keys(overrides).length === 0 ? 'as the preset' : JSON.stringify(overrides);
    test(`${preset} (${variant}), opset ${opset}: logits and boxes within 1e-4`, async () => {
      const m = createDetector(preset, overrides);
      const cfg = m.config;
      T.manualSeed(6);
      T.noGrad(() => {
        for (const [, p] of m.namedParameters()) if (p.ndim > 1) p.copy_(T.randn(p.shape).mul(Math.sqrt(2 / p.size(1))));
        // BatchNorm with running statistics other than the identity's (the conv stem)
        for (const [name, b] of m.namedBuffers()) {
          if (name.endsWith('running_mean')) b.copy_(T.randn(b.shape).mul(0.1));
          if (name.endsWith('running_var')) b.copy_(T.rand(b.shape).add(0.5));
        }
      });
      m.eval();
      const canvases = composeCanvases(canvasSource(test28), 16, 0);
      const x = canvasImages(canvases, 64);
      const c = { preset, classNames: test28.classNames, mean: test28.mean, std: test28.std };
      const { bytes, info } = detectorToOnnx(m, c, { dynamicBatch: true, opset });
      assert.deepEqual(info.outputs.map((o) => [o.name, o.dims]), [['logits', ['batch', 12, 11]], ['boxes', ['batch', 12, 4]]]);
      const proto = decodeModel(bytes);
      const ops = new Set(proto.graph!.node!.map((n) => n.opType));
      const inits = new Set(proto.graph!.initializer!.map((t) => t.name));
      assert.equal(ops.has('BatchNormalization'), cfg.stem === 'conv');
      assert.equal(inits.has('stem.convs.0.weight') && inits.has('stem.norms.0.running_var'), cfg.stem === 'conv');
      for (const op of ['Sin', 'Cos', 'Log', 'Clip']) assert.equal(ops.has(op), cfg.anchors, op);
      assert.equal(inits.has('anchor_logits') && inits.has('anchor_head.layers.1.weight_T'), cfg.anchors);
      // the heads shared by every decoder layer are stored once
      assert.equal(proto.graph!.initializer!.filter((t) => t.name === 'box_head.layers.0.weight_T').length, 1);
      assert.deepEqual(JSON.parse(metadataOf(proto)['vit_dfkd.detr']!), { anchors: cfg.anchors, stem: cfg.stem });
      const loaded = await loadOnnx(bytes);
      const outs = await runOnnx(loaded, x);
      const ref = T.inferenceMode(() => T.tidy(() => {
        const r = m.forward(normalize(x, c.mean, c.std));
        return { logits: r.logits.contiguous().data() as Float32Array, boxes: r.boxes.contiguous().data() as Float32Array, range: r.logits.abs().max().item(), boxSpread: r.boxes.max().sub(r.boxes.min()).item() };
      }));
      assert.ok(ref.range > 1, `logits of a real scale (${ref.range})`);
      assert.ok(ref.boxSpread > 0.3, `boxes spread over the image (${ref.boxSpread})`);
      assert.ok(maxAbsDiff(outs.logits!.data, ref.logits) <= TOL, `logits ${maxAbsDiff(outs.logits!.data, ref.logits)}`);
      assert.ok(maxAbsDiff(outs.boxes!.data, ref.boxes) <= TOL, `boxes ${maxAbsDiff(outs.boxes!.data, ref.boxes)}`);
      assert.equal(loaded.metadata['vit_dfkd.task'], 'detection');
      // mAP through ONNX Runtime (vit-dfkd's post-processing and COCO evaluation on ORT's outputs)
      // equals vit-dfkd's, query by query.
      const data = { name: 'canvas', split: 'test' as const, images: x, targets: canvasTargets(canvases.objects, 64), numClasses: 10, classNames: test28.classNames, mean: c.mean, std: c.std };
      const viaOrt = await evaluateOnnxDetector(loaded, data);
      const viaTorch = evaluateDetector(m, data);
      assert.equal(viaOrt.map, viaTorch.map);
      assert.equal(viaOrt.ap50, viaTorch.ap50);
      const torchPreds = predict(m, data);
      viaOrt.predictions.forEach((ps, i) => ps.forEach((p, q) => {
        assert.equal(p.label, torchPreds[i]![q]!.label);
        assert.ok(Math.abs(p.score - torchPreds[i]![q]!.score) <= 1e-5);
      }));
      x.dispose();
      await loaded.session.release();
    });
  }

  test('a fixed batch of 3 (anchor queries, conv stem): parity with the last chunk padded', async () => {
    const m = createDetector('detr-student-64');
    T.manualSeed(7);
    T.noGrad(() => {
      for (const [, p] of m.namedParameters()) if (p.ndim > 1) p.copy_(T.randn(p.shape).mul(Math.sqrt(2 / p.size(1))));
    });
    m.eval();
    const x = canvasImages(composeCanvases(canvasSource(test28), 7, 1), 64);
    const c = { preset: 'detr-student-64', classNames: test28.classNames, mean: [0.5], std: [0.5] };
    const { bytes, info } = detectorToOnnx(m, c, { batch: 3, foldNormalization: false });
    assert.deepEqual(info.inputs[0]!.dims, [3, 1, 64, 64]);
    const loaded = await loadOnnx(bytes);
    const r = await detectorParity(m, loaded, x);
    assert.ok(r.maxAbsLogits <= TOL && r.maxAbsBoxes <= TOL, JSON.stringify(r));
    x.dispose();
    await loaded.session.release();
  });

  test('inverse sigmoid and anchor sine embedding graphs vs hand-worked values', async () => {
    const O = await ort();
    const g = new OnnxGraph(13);
    const a = g.addInput('a', [1, 1, 4]);
    // σ⁻¹ with the model's ε = 1e-5: 0.5 → 0, 0.25 → ln(1/3), 1 → ln((1 − ε)/ε), 0 → −ln((1 − ε)/ε)
    g.addOutput('inv', inverseSigmoidGraph(g, a), [1, 1, 4]);
    // D = 8: one frequency (1) per coordinate, angles 2π·[0.25, 0.5, 0, 1] = [π/2, π, 0, 2π] → (sin, cos) pairs
    g.addOutput('sine', anchorSineEmbeddingGraph(g, a, 1, 8), [1, 1, 8]);
    const s = await O.InferenceSession.create(g.serialize({ producerVersion: 'test', props: {} }));
    const out = await s.run({ a: new O.Tensor('float32', Float32Array.from([0.5, 0.25, 1, 0]), [1, 1, 4]) });
    const clampLogit = Math.log((1 - 1e-5) / 1e-5); // 11.512915
    const inv = out.inv!.data as Float32Array;
    [0, Math.log(1 / 3), clampLogit, -clampLogit].forEach((want, i) => assert.ok(Math.abs(inv[i]! - want) <= 1e-4, `inv[${i}] ${inv[i]} vs ${want}`));
    const sineIn = await s.run({ a: new O.Tensor('float32', Float32Array.from([0.25, 0.5, 0, 1]), [1, 1, 4]) });
    const sine = sineIn.sine!.data as Float32Array;
    [1, 0, 0, -1, 0, 1, 0, 1].forEach((want, i) => assert.ok(Math.abs(sine[i]! - want) <= 1e-6, `sine[${i}] ${sine[i]} vs ${want}`));
    await s.release();
    // and the model's own anchorSineEmbedding gives the same on these anchors
    const ref = anchorSineEmbedding(T.tensor([0.25, 0.5, 0, 1], { shape: [1, 1, 4] }), 8).toArray();
    [1, 0, 0, -1, 0, 1, 0, 1].forEach((want, i) => assert.ok(Math.abs(ref[i]! - want) <= 1e-6));
  });

  test('what the graph cannot describe is refused with a clear message', () => {
    const c = { preset: 'detr-student-64', classNames: test28.classNames, mean: [0.5], std: [0.5] };
    const odd = createDetector('detr-student-64');
    (odd.config as { stem: string }).stem = 'hybrid';
    assert.throws(() => detectorToOnnx(odd, c), /'hybrid' stem is not supported \(only 'patch' and 'conv'\)/);
    const narrow = createDetector('detr-student-64', { dim: 12, heads: 2 }); // 12 is no multiple of 8
    assert.throws(() => detectorToOnnx(narrow, c), /width 12 must be a multiple of 8 for anchor queries/);
    const noStem = createDetector('detr-student-64');
    noStem.stem = null;
    assert.throws(() => detectorToOnnx(noStem, c), /config says stem 'conv' but the model has no conv stem/);
  });
});

describe('shipped teachers through ONNX Runtime', () => {
  for (const dir of ['teachers/mnist-vit', 'teachers/mnist-lenet5']) {
    test(`${dir}: parity on real test digits, and ONNX Runtime's test accuracy equals vit-dfkd's`, async () => {
      const { model, card: c } = loadClassifier(join(REPO, dir));
      const { bytes, info } = classifierToOnnx(model, c, { dynamicBatch: true });
      const loaded = await loadOnnx(bytes);
      const r = await classifierParity(model, loaded, test28.images.narrow(0, 0, 200));
      assert.ok(r.maxAbsLogits <= TOL, `max |Δlogits| ${r.maxAbsLogits}`);
      const ortEval = await evaluateOnnx(loaded, test28);
      const torchEval = evaluateClassifier(model, test28);
      assert.equal(ortEval.total, 1005);
      assert.equal(ortEval.correct, torchEval.correct, `ONNX Runtime ${ortEval.accuracy} vs vit-dfkd ${torchEval.accuracy}`);
      assert.deepEqual(ortEval.predictions, torchPredictions(model, test28));
      assert.ok(ortEval.accuracy > 0.95);
      // metadata_props carry what a deployment needs
      const meta = metadataOf(decodeModel(bytes));
      assert.deepEqual(JSON.parse(meta['vit_dfkd.classes']!), c.classNames);
      assert.deepEqual(JSON.parse(meta['vit_dfkd.input_shape']!), [1, 28, 28]);
      assert.deepEqual(JSON.parse(meta['vit_dfkd.mean']!), c.mean);
      assert.equal(meta['vit_dfkd.normalization'], 'folded');
      assert.equal(meta['vit_dfkd.preset'], c.preset);
      assert.equal(info.parameters, model.numParameters());
      await loaded.session.release();
    });
  }
});

describe('graph builder: values vs hand-worked fixtures', () => {
  test('Linear, erf-GELU, LayerNorm (both forms), attention, select/slice in ONNX Runtime', async () => {
    const O = await ort();
    for (const opset of [13, 17]) {
      const g = new OnnxGraph(opset);
      const x = g.addInput('x', [1, 2, 3]);
      // Linear W = [[1, 0, -1], [2, 1, 0]], b = [0.5, -1] on rows [1, 2, 3] and [0, -1, 1]:
      // row 1 → [1 − 3 + 0.5, 2 + 2 − 1] = [−1.5, 3]; row 2 → [−1 + 0.5, −1 − 1] = [−0.5, −2]
      const w = T.tensor([1, 0, -1, 2, 1, 0], { shape: [2, 3] });
      const b = T.tensor([0.5, -1]);
      const lin = g.linear(x, 'lin', w, b);
      g.addOutput('lin', lin, [1, 2, 2]);
      // GELU(−1.5) = −1.5 Φ(−1.5) = −0.100204, GELU(3) = 2.995950, GELU(−0.5) = −0.154269, GELU(−2) = −0.045500
      g.addOutput('gelu', g.gelu(lin), [1, 2, 2]);
      // LayerNorm of [1, 2, 3] (ε = 0): mean 2, var 2/3 → [−1.224745, 0, 1.224745]; γ = [1, 2, 3], β = [0, 0, 1]
      g.addOutput('ln', g.layerNorm(x, 'ln', T.tensor([1, 2, 3]), T.tensor([0, 0, 1]), 0, 3), [1, 2, 3]);
      g.addOutput('row1', g.select(x, 1, 1), [1, 3]);
      g.addOutput('tail', g.slice(x, 2, 1, 3), [1, 2, 2]);
      // one head, q = k = v = x: scores [[14, 1], [1, 2]] / √3 → softmax rows
      const q = g.reshape(x, [1, 1, 2, 3]);
      g.addOutput('attn', g.attention(q, q, q, 1 / Math.sqrt(3)).weights, [1, 1, 2, 2]);
      const s = await O.InferenceSession.create(g.serialize({ producerVersion: 'test', props: {} }));
      const out = await s.run({ x: new O.Tensor('float32', Float32Array.from([1, 2, 3, 0, -1, 1]), [1, 2, 3]) });
      const close = (got: ArrayLike<number>, want: number[], tol = 1e-5): void => {
        assert.equal(got.length, want.length);
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= tol, `[${i}] ${got[i]} vs ${want[i]}`);
      };
      close(out.lin!.data as Float32Array, [-1.5, 3, -0.5, -2]);
      close(out.gelu!.data as Float32Array, [-0.100204, 2.99595, -0.154269, -0.0455003]);
      // second row [0, −1, 1]: mean 0, var 2/3 → [0, −1.224745, 1.224745] · γ + β
      close(out.ln!.data as Float32Array, [-1.224745, 0, 1 + 3 * 1.224745, 0, -2 * 1.224745, 1 + 3 * 1.224745]);
      close(out.row1!.data as Float32Array, [0, -1, 1]);
      close(out.tail!.data as Float32Array, [2, 3, -1, 1]);
      const r0 = [14 / Math.sqrt(3), 1 / Math.sqrt(3)];
      const r1 = [1 / Math.sqrt(3), 2 / Math.sqrt(3)];
      const sm = (r: number[]): number[] => r.map((v) => Math.exp(v) / r.reduce((a, u) => a + Math.exp(u), 0));
      close(out.attn!.data as Float32Array, [...sm(r0), ...sm(r1)]);
      await s.release();
    }
  });

  test('the builder refuses malformed graphs with a clear message', () => {
    assert.throws(() => new OnnxGraph(12), /opset 12 is not supported \(13–21/);
    const g = new OnnxGraph();
    g.addInput('x', [1]);
    assert.throws(() => g.op('Relu', ['y']), /reads 'y', which is not defined yet/);
    assert.throws(() => g.op('FancyOp', ['x']), /FancyOp is not in the builder's list/);
    assert.throws(() => g.addInput('x', [1]), /'x' is defined twice/);
    assert.throws(() => g.op('Flatten', ['x'], { axis: 0.5 }), /not an integer/);
    assert.throws(() => g.initFloat('w', [1, 2, 3], [2, 2]), /3 values for shape \[2, 2\]/);
    assert.throws(() => g.serialize({ producerVersion: 't', props: {} }), /no outputs/);
    assert.throws(() => decodeModel(Uint8Array.from([0xff, 0xff, 0xff, 0xff])), /not an ONNX model/);
  });

  test('a model card that does not fit the model is an error, not a broken file', () => {
    const m = createModel('lenet5-28');
    assert.throws(() => classifierToOnnx(m, { ...card(m), classNames: ['a', 'b'] }), /10 classes but 2 class names/);
    assert.throws(() => classifierToOnnx(m, { ...card(m), mean: [0.1, 0.2, 0.3] }), /1 channel mean\/std values/);
    assert.throws(() => classifierToOnnx(m, { ...card(m), std: [0] }), /std values must be positive/);
    assert.throws(() => classifierToOnnx(m, card(m), { batch: 0 }), /batch must be a positive integer/);
  });

  test('serialised models decode with the official schema: IR version, opset, initialisers named as the state dict', () => {
    const m = createModel('vit-student-28');
    // the default 'rows' layout: the prefix token folded into the position table (Pad, no Concat / Expand)
    const proto = decodeModel(classifierToOnnx(m, card(m)).bytes);
    assert.equal(Number(proto.irVersion), 8);
    assert.equal(proto.producerName, 'vit-dfkd');
    assert.equal(metadataOf(proto)['vit_dfkd.graph_layout'], 'rows');
    const inits = new Set(proto.graph!.initializer!.map((t) => t.name));
    for (const k of ['pos_embed.with_prefix_tokens', 'patch_embed.proj.weight', 'blocks.2.mlp.fc1.weight_T', 'head.weight', 'norm.bias']) assert.ok(inits.has(k), k);
    assert.ok(!inits.has('cls_token'));
    const ops = new Set(proto.graph!.node!.map((n) => n.opType));
    for (const op of ['Conv', 'MatMul', 'Gemm', 'LayerNormalization', 'Softmax', 'Erf', 'Gather', 'Pad', 'Split', 'Transpose', 'Reshape']) assert.ok(ops.has(op), op);
    assert.ok(!ops.has('Expand') && !ops.has('Concat'));
    assert.equal(proto.graph!.initializer!.find((t) => t.name === 'pos_embed.with_prefix_tokens')!.dataType, onnx.TensorProto.DataType.FLOAT);
    // 'tokens': operator for operator the libtorch forward, every initialiser named as in the state dict
    const ref = decodeModel(classifierToOnnx(m, card(m), { vitLayout: 'tokens' }).bytes);
    const refInits = new Set(ref.graph!.initializer!.map((t) => t.name));
    for (const k of ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'blocks.2.mlp.fc1.weight_T', 'head.weight', 'norm.bias']) assert.ok(refInits.has(k), k);
    const refOps = new Set(ref.graph!.node!.map((n) => n.opType));
    for (const op of ['Conv', 'MatMul', 'Gemm', 'LayerNormalization', 'Softmax', 'Erf', 'Gather', 'Concat', 'Expand', 'Transpose', 'Reshape']) assert.ok(refOps.has(op), op);
    assert.ok(ref.graph!.node!.length > proto.graph!.node!.length, `${ref.graph!.node!.length} vs ${proto.graph!.node!.length} nodes`);
  });
});

describe('dfkd export (CLI)', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, 'export', ...args], { encoding: 'utf8', env: { ...process.env, VIT_DFKD_THREADS: '1' }, timeout: 120_000 });

  test('exports the shipped LeNet-5 teacher, prints parity and accuracy; --json gives the numbers', () => {
    const out = join(tmp, 'lenet.onnx');
    const r = run(['--model', join(REPO, 'teachers/mnist-lenet5'), '--onnx', out, '--dynamic-batch', '--eval', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { parity: { maxAbsLogits: number; images: number }; eval: { onnxruntime_accuracy: number; vit_dfkd_accuracy: number; predictions_differ: number } };
    assert.equal(j.parity.images, 100);
    assert.ok(j.parity.maxAbsLogits <= TOL);
    assert.equal(j.eval.onnxruntime_accuracy, j.eval.vit_dfkd_accuracy);
    assert.equal(j.eval.predictions_differ, 0);
    assert.ok(existsSync(out) && readFileSync(out).length > 200_000);
  });

  test('exports a saved DETR detector (card task "detect"), parity on real test canvases', () => {
    const m = createDetector('detr-student-64');
    const dir = join(tmp, 'detr');
    saveCheckpoint(join(dir, 'model'), m, {
      task: 'detect', preset: 'detr-student-64', overrides: { numClasses: 10 }, dataset: 'canvas-mnist', numClasses: 10,
      classNames: test28.classNames, inputShape: [1, 64, 64], mean: [0.5], std: [0.5],
    });
    const out = join(tmp, 'detr.onnx');
    const r = run(['--model', dir, '--onnx', out, '--dynamic-batch', '--verify', '16', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { family: string; parity: { source: string; maxAbsLogits: number; maxAbsBoxes: number }; outputs: { name: string }[] };
    assert.equal(j.family, 'detr');
    assert.match(j.parity.source, /16 canvas-mnist test images/);
    assert.ok(j.parity.maxAbsLogits <= TOL && j.parity.maxAbsBoxes <= TOL);
    assert.deepEqual(j.outputs.map((o) => o.name), ['logits', 'boxes']);
    assert.ok(existsSync(out));
  });

  test('bad input exits non-zero with a message and writes nothing (or leaves the old file)', () => {
    const missing = run(['--model', join(tmp, 'nope'), '--onnx', join(tmp, 'a.onnx')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no model at/);
    assert.equal(existsSync(join(tmp, 'a.onnx')), false);
    const opset = run(['--model', join(REPO, 'teachers/mnist-lenet5'), '--onnx', join(tmp, 'a.onnx'), '--opset', '9']);
    assert.equal(opset.status, 1);
    assert.match(opset.stderr, /opset 9 is not supported/);
    const suffix = run(['--model', join(REPO, 'teachers/mnist-lenet5'), '--onnx', join(tmp, 'a.bin')]);
    assert.equal(suffix.status, 1);
    assert.match(suffix.stderr, /must end in \.onnx/);
    // A parity failure (impossible tolerance) keeps the previous file untouched.
    const keep = join(tmp, 'keep.onnx');
    writeFileSync(keep, 'old');
    const strict = run(['--model', join(REPO, 'teachers/mnist-lenet5'), '--onnx', keep, '--tolerance', '1e-30', '--verify', '20']);
    assert.equal(strict.status, 1);
    assert.match(strict.stderr, /disagree: max \|Δlogits\| .* nothing written/);
    assert.equal(readFileSync(keep, 'utf8'), 'old');
  });
});

// Data-free detection distillation: the objectives on hand-worked values and properties, gradients
// vs finite differences, every method end to end (losses move the right way), exact resume, the CLI.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

import * as T from '../src/index.js';
import { gradcheck } from '../src/index.js';
import { Adam } from '../src/nn/optim.js';
import { Linear } from '../src/nn/layers.js';
import { createDetector, type DETR } from '../src/models/detr.js';
import { loadDetectionDataset } from '../src/data/detection.js';
import { detectorCard, loadDetector, publishDetector } from '../src/detect/run.js';
import { setLossGivenMatch } from '../src/detect/loss.js';
import {
  attentionCompactnessLoss, featureDistillLoss, matchedDiscrepancy, matchedPairs, pseudoTargets, queryBalanceLoss, queryConfidenceLoss, queryExcessLoss, studentDetectionLoss,
} from '../src/detect/distill/losses.js';
import { createDetectMethod, sampleTargets, type DetectDistillContext, type DetectTgan } from '../src/detect/distill/methods.js';
import { detectStudentStep, freezeDetector, runDetectDistillation, type DetectDistillConfig } from '../src/detect/distill/run.js';
import { canSelectWeights, selectWeights } from '../src/distill/init.js';
import { composeCanvases, emptyBackground } from '../src/detect/distill/layout.js';
import { GeneratorProcess } from '../src/detect/distill/feed.js';

T.setNumThreads(1);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dfkd-ddistill-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SPEC = 'canvas-mnist?n=16&nval=8&ntest=8&size=32&scale=10-16&objects=1-2';
const TINY = { imageSize: 32, dim: 32, encoderDepth: 1, decoderDepth: 2, heads: 2, numQueries: 5, mlpRatio: 2 };
const close = (a: number, b: number, tol: number, what = ''): void => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

describe('layout canvases', () => {
  test('an object fills exactly its box; empty slots draw nothing; dark polarity inverts', () => {
    // Object image of ones into the box centred at (0.5, 0.5), half the 16-pixel canvas: pixels 4..11.
    const ones = T.ones([2, 1, 8, 8]);
    const targets = [{ labels: [3], boxes: [[0.5, 0.5, 0.5, 0.5] as [number, number, number, number]] }];
    const c = composeCanvases(ones, targets, 2, 16, { level: 0, bright: true });
    assert.deepEqual(c.shape, [1, 1, 16, 16]);
    const px = Array.from(c.data() as Float32Array);
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 16; x++) close(px[y * 16 + x]!, x >= 4 && x < 12 && y >= 4 && y < 12 ? 1 : 0, 1e-6, `pixel (${x}, ${y})`);
    }
    // A grey background (0.25) under bright ink: 0.25 + 0.75·a; a dark object on a white one: 1 − a.
    close(composeCanvases(ones, targets, 2, 16, { level: 0.25, bright: true }).max().item(), 1, 1e-6);
    close(composeCanvases(ones, targets, 2, 16, { level: 0.25, bright: true }).min().item(), 0.25, 1e-6);
    const dark = composeCanvases(ones, targets, 2, 16, { level: 1, bright: false });
    close(dark.sum().item(), 256 - 64, 1e-4, 'dark: 64 black pixels on white');
    assert.throws(() => composeCanvases(T.ones([3, 1, 8, 8]), targets, 2, 16, { level: 0, bright: true }), /3 object images for 1 canvases × 2 slots/);
  });

  test('composition is differentiable in the object images (float64 finite differences)', () => {
    T.manualSeed(3);
    const objs = T.rand([4, 1, 6, 6], { dtype: 'float64' }).add(0.1).requiresGrad_();
    const targets = [
      { labels: [1, 2], boxes: [[0.3, 0.3, 0.4, 0.3], [0.7, 0.65, 0.35, 0.5]] as [number, number, number, number][] },
      { labels: [0], boxes: [[0.45, 0.5, 0.6, 0.55]] as [number, number, number, number][] },
    ];
    const r = gradcheck((o) => composeCanvases(o, targets, 2, 12, { level: 0.1, bright: true }), [objs], { rtol: 1e-6 });
    assert.ok(r.ok, JSON.stringify(r));
  });

  test('the empty background is the constant canvas the teacher finds emptiest', () => {
    T.manualSeed(5);
    const teacher = createDetector('detr-student-64', TINY).eval();
    const bg = emptyBackground(teacher, [1, 32, 32], [0.5], [0.5], 4);
    assert.ok([0, 0.25, 0.5, 0.75, 1].includes(bg.level));
    assert.equal(bg.bright, bg.level < 0.5);
    const objectness = (v: number): number => T.noGrad(() => {
      const o = teacher.forward(T.full([1, 1, 32, 32], (v - 0.5) / 0.5), { aux: false });
      return o.logits.softmax(-1).select(-1, 10).rsub(1).mean().item();
    });
    for (const v of [0, 0.25, 0.5, 0.75, 1]) assert.ok(bg.objectness <= objectness(v) + 1e-6, `level ${v}`);
    close(bg.objectness, objectness(bg.level), 1e-5);
  });
});

describe('objectives', () => {
  test('pseudo-targets: queries above θ, best object class, teacher query indices', () => {
    // 1 image, 3 queries, 2 classes + no object: probabilities (by construction of the logits)
    // q0 = (0.7, 0.1, 0.2), q1 = (0.2, 0.2, 0.6), q2 = (0.1, 0.6, 0.3).
    const logits = T.tensor([[[0.7, 0.1, 0.2], [0.2, 0.2, 0.6], [0.1, 0.6, 0.3]].map((r) => r.map(Math.log))]);
    const boxes = T.tensor([[[0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2], [0.8, 0.8, 0.1, 0.2]]]);
    const p = pseudoTargets(logits, boxes, 0.5);
    assert.deepEqual(p.teacherQueries, [[0, 2]]);
    assert.deepEqual(p.targets[0]!.labels, [0, 1]);
    p.targets[0]!.boxes[1]!.forEach((v, i) => close(v, [0.8, 0.8, 0.1, 0.2][i]!, 1e-6));
    assert.deepEqual(pseudoTargets(logits, boxes, 0.65).teacherQueries, [[0]]);
    assert.deepEqual(matchedPairs([{ queries: [4, 1], targets: [1, 0] }], [[0, 2]], 6, 3), { student: [4, 1], teacher: [2, 0] });
  });

  test('pseudo-target NMS: class-agnostic, highest probability kept, IoU hand-worked, query order kept', () => {
    // 1 image, 4 queries, 2 classes + no object. q0 (p 0.6, class 0) and q1 (p 0.9, class 1): boxes
    // [0.2, 0.2]–[0.6, 0.6] and [0.3, 0.2]–[0.7, 0.6], intersection 0.3·0.4 = 0.12, union 0.16 + 0.16 −
    // 0.12 = 0.20, IoU 0.6. q2 (p 0.8, class 0) [0.7, 0.7]–[0.9, 0.9] and q3 (p 0.7, class 1) [0.7,
    // 0.75]–[0.9, 0.85] inside it: IoU 0.02 / 0.04 = 0.5. The two pairs only touch (IoU 0).
    const probs = [[0.6, 0.1, 0.3], [0.05, 0.9, 0.05], [0.8, 0.1, 0.1], [0.1, 0.7, 0.2]];
    const logits = T.tensor([probs.map((r) => r.map(Math.log))]);
    const boxes = T.tensor([[[0.4, 0.4, 0.4, 0.4], [0.5, 0.4, 0.4, 0.4], [0.8, 0.8, 0.2, 0.2], [0.8, 0.8, 0.2, 0.1]]]);
    assert.deepEqual(pseudoTargets(logits, boxes, 0.5).teacherQueries, [[0, 1, 2, 3]], 'off by default');
    assert.deepEqual(pseudoTargets(logits, boxes, 0.5, 0.55).teacherQueries, [[1, 2, 3]], 'IoU 0.6 > 0.55: q0 (0.6) yields to q1 (0.9); 0.5 ≤ 0.55 keeps q3');
    const p = pseudoTargets(logits, boxes, 0.5, 0.45);
    assert.deepEqual(p.teacherQueries, [[1, 2]], 'IoU 0.5 > 0.45: q3 (0.7) yields to q2 (0.8)');
    assert.deepEqual(p.targets[0]!.labels, [1, 0]);
    assert.deepEqual(pseudoTargets(logits, boxes, 0.5, 0.65).teacherQueries, [[0, 1, 2, 3]]);
  });

  test('--eos-coef reaches the student’s set loss: weighted CE hand-worked', () => {
    // 1 image, 2 queries, 1 class + no object; q0 matched to a class-0 target with p(0) = 0.8, q1
    // unmatched with p(no object) = 0.4: CE = (−ln 0.8 + eos·(−ln 0.4)) / (1 + eos).
    const pred = { logits: T.tensor([[[0.8, 0.2], [0.6, 0.4]].map((r) => r.map(Math.log))]), boxes: T.tensor([[[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1]]]) };
    const targets = [{ labels: [0], boxes: [[0.5, 0.5, 0.2, 0.2] as const] }];
    const ctx = context();
    for (const eos of [0.1, 0.5]) {
      const m = createDetectMethod('tgan', ctx, { eosCoef: eos, lambdaBn: 0 });
      const ce = setLossGivenMatch(pred, targets, [{ queries: [0], targets: [0] }], m.student.loss).ce.item();
      close(ce, (-Math.log(0.8) - eos * Math.log(0.4)) / (1 + eos), 1e-5, `eos ${eos}`);
      m.dispose();
    }
  });

  test('a student identical to the teacher: KD and discrepancy are 0, set loss is the teacher’s own', () => {
    T.manualSeed(4);
    const teacher = createDetector('detr-student-64', TINY);
    const student = createDetector('detr-student-64', TINY);
    student.loadStateDict(teacher.stateDict());
    teacher.eval();
    student.eval();
    const x = T.randn([3, 1, 32, 32]);
    const t = teacher.forward(x, { aux: true });
    const s = student.forward(x, { aux: true });
    const r = studentDetectionLoss(t, s, { threshold: 0.0, tau: 2, kdWeight: 1, setWeight: 1 });
    assert.ok(r.logs['S/objects']! === 5, 'every query is a pseudo-target at θ = 0');
    close(r.logs['S/kd']!, 0, 1e-6, 'kd');
    close(r.logs['S/l1']!, 0, 1e-6, 'l1');
    close(matchedDiscrepancy(t, s, { threshold: 0, tau: 2 }).item(), 0, 1e-5, 'discrepancy');
    // A different student disagrees.
    const other = createDetector('detr-student-64', TINY).eval();
    other.loadStateDict(teacher.stateDict());
    T.noGrad(() => other.classHead.bias!.add_(T.randn([11])));
    assert.ok(matchedDiscrepancy(t, other.forward(x), { threshold: 0, tau: 2 }).item() > 0.01);
  });

  test('feature distillation: MSE through the adapter over the teacher tokens’ mean square, worked by hand', () => {
    const adapter = new Linear(2, 2);
    T.noGrad(() => {
      adapter.weight.copy_(T.tensor([[1, 0], [0, 1]]));
      adapter.bias!.zero_();
    });
    // Student tokens (1, 2) and (0, 1), teacher (1, 0) and (2, 1): squared errors 0 + 4 + 4 + 0 → mean 2;
    // teacher mean square (1 + 0 + 4 + 1) / 4 = 1.5 → 2 / 1.5.
    const s = T.tensor([[[1, 2], [0, 1]]]);
    const t = T.tensor([[[1, 0], [2, 1]]]);
    close(featureDistillLoss(s, t, adapter).item(), 2 / 1.5, 1e-6);
    assert.throws(() => featureDistillLoss(s, T.zeros([1, 3, 2]), adapter), /the student has 2 encoder tokens, the teacher 3/);
  });

  test('confidence, balance and compactness values worked by hand', () => {
    // One image, 2 queries, 2 classes + no object; top-1 query by object probability is q1 (p = 0.8).
    const logits = T.tensor([[[0.3, 0.3, 0.4], [0.1, 0.8, 0.1]].map((r) => r.map(Math.log))]);
    close(queryConfidenceLoss(logits, 1).item(), -Math.log(0.8), 1e-6, 'conf k=1');
    close(queryConfidenceLoss(logits, 2).item(), (-Math.log(0.8) - Math.log(0.3)) / 2, 1e-6, 'conf k=2');
    // Balance over the top-2 queries' object classes: q0 renormalised (0.5, 0.5), q1 (1/9, 8/9) → p̄ = (11/36, 25/36).
    const pbar = [11 / 36, 25 / 36];
    close(queryBalanceLoss(logits, 2).item(), pbar.reduce((s, p) => s + p * Math.log(p), 0), 1e-6, 'balance');
    // Cross-attention over a 2×2 grid (patch centres 0.25 / 0.75): one-hot → 0; uniform → 0.0625 + 0.0625.
    const attn = T.tensor([[[1, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]]]);
    close(attentionCompactnessLoss(attn, logits, 1).item(), 0.125, 1e-7, 'uniform attention (q1 is top)');
    // Sparsity: outside the top-1 (q1) only q0, whose object probability is 1 − 0.4 = 0.6.
    close(queryExcessLoss(logits, 1).item(), 0.6, 1e-6, 'sparsity k=1');
    close(queryExcessLoss(logits, 2).item(), 0, 1e-9, 'sparsity k=Q');
    const attn2 = T.tensor([[[0.25, 0.25, 0.25, 0.25], [0, 0, 1, 0]]]);
    close(attentionCompactnessLoss(attn2, logits, 1).item(), 0, 1e-7, 'one-hot attention');
  });

  test('gradients of the generator terms match finite differences (float64)', () => {
    const logits = T.tensor([[[0.3, -0.2, 0.5, 0.1], [1.2, 0.4, -0.3, 0.2], [0.2, 0.9, 0.1, -0.5]]], { dtype: 'float64' }).requiresGrad_();
    for (const [name, f] of [['confidence', (l: T.Tensor) => queryConfidenceLoss(l, 2)], ['balance', (l: T.Tensor) => queryBalanceLoss(l, 2)], ['sparsity', (l: T.Tensor) => queryExcessLoss(l, 1)]] as const) {
      const r = gradcheck(f, [logits], { rtol: 1e-6 });
      assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`);
    }
    const fixed = logits.detach();
    const attn = T.tensor([[[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.3, 0.2]]], { dtype: 'float64' }).requiresGrad_();
    const r = gradcheck((a) => attentionCompactnessLoss(a, fixed, 2), [attn], { rtol: 1e-6 });
    assert.ok(r.ok, JSON.stringify(r));
  });

  test('weight selection: every detr-student-64 tensor comes from detr-teacher-64 (first layers, even channels)', () => {
    T.manualSeed(1);
    const teacher = createDetector('detr-teacher-64');
    const student = createDetector('detr-student-64');
    assert.ok(canSelectWeights(teacher, student));
    const r = selectWeights(teacher, student);
    assert.deepEqual(r.kept, {});
    // The class head keeps the teacher's even input channels; the anchors are copied as they are.
    const want = teacher.classHead.weight.indexSelect(1, T.arange(0, 128, 2, { dtype: 'int64' }));
    assert.equal(student.classHead.weight.sub(want).abs().max().item(), 0);
    assert.equal(student.anchorLogits!.sub(teacher.anchorLogits!).abs().max().item(), 0);
  });

  test('sampled deepinv targets: seeded, 1–4 boxes inside the canvas', () => {
    const h = { minObjects: 1, maxObjects: 4, minScale: 0.2, maxScale: 0.45 };
    const a = sampleTargets(20, 10, 3, h);
    assert.deepEqual(a, sampleTargets(20, 10, 3, h));
    for (const t of a) {
      assert.ok(t.labels.length >= 1 && t.labels.length <= 4);
      for (const [cx, cy, w, hh] of t.boxes) assert.ok(cx - w / 2 >= 0 && cx + w / 2 <= 1 && cy - hh / 2 >= 0 && cy + hh / 2 <= 1 && w >= 0.2 && w <= 0.45);
    }
  });
});

function context(): DetectDistillContext {
  T.manualSeed(7);
  const teacher = createDetector('detr-student-64', { ...TINY, dim: 48, heads: 4 });
  const student = createDetector('detr-student-64', TINY);
  freezeDetector(teacher);
  return { teacher, student, inputShape: [1, 32, 32], numClasses: 10, mean: [0.5], std: [0.5], batchSize: 4 };
}

describe('methods end to end (random tiny teacher, θ = 0 so every query is a pseudo-target)', () => {
  test('student steps on one batch lower the student loss', () => {
    const ctx = context();
    const method = createDetectMethod('tgan', ctx, { threshold: 0 });
    const x = T.randn([4, 1, 32, 32]);
    const opt = new Adam(ctx.student.parameters(), { lr: 2e-3 });
    const first = detectStudentStep(ctx, method, opt, x, 0);
    let lastLogs = first;
    for (let i = 0; i < 15; i++) lastLogs = detectStudentStep(ctx, method, opt, x, 0);
    assert.ok(lastLogs['S/set']! < 0.8 * first['S/set']!, `${first['S/set']} → ${lastLogs['S/set']}`);
    method.dispose();
  });

  test('tgan layout on the shipped teacher: black background found; the generator lowers the teacher’s set loss on the sampled boxes', () => {
    // A random tiny teacher barely depends on its input (its set loss moves by 0.003 in 30 steps), so
    // this one uses the shipped canvas teacher: what the layout generator is for.
    T.manualSeed(7);
    const { model: teacher } = loadDetector(path.resolve('teachers/detr-canvas-mnist'));
    freezeDetector(teacher);
    const ctx: DetectDistillContext = { teacher, student: createDetector('detr-student-64', { numClasses: 10, inChannels: 1, imageSize: 64 }), inputShape: [1, 64, 64], numClasses: 10, mean: [0.5], std: [0.5], batchSize: 4 };
    // Label std 0.02 (the default until session 7): at 1 the set loss falls more slowly at first (4.92 → 4.73 in 8 steps).
    const m = createDetectMethod('tgan', ctx, { lambdaAdv: 0, lambdaAttn: 0, lambdaTv: 0, lrG: 3e-3, labelStd: 0.02 }) as DetectTgan;
    assert.equal(m.background!.level, 0, 'the canvases are black: so is the teacher’s emptiest constant canvas');
    assert.ok(m.background!.objectness < 0.01);
    const set: number[] = [];
    for (let i = 0; i < 8; i++) {
      T.manualSeed(100); // same layout and latents every step: the change is the generator's
      set.push(T.tidy(() => m.synthesize(ctx).logs['G/set']!));
    }
    assert.ok(set[7]! < 0.7 * set[0]!, `G/set ${set[0]} → ${set[7]}`);
    assert.deepEqual(m.previewBatch(ctx, 16).shape, [16, 1, 64, 64]);
    m.dispose();
  });

  test('tgan (whole canvases, layout 0): the generator makes the teacher more confident (G/conf falls) with the adversary off', () => {
    const ctx = context();
    const m = createDetectMethod('tgan', ctx, { layout: 0, freshBatches: 0, threshold: 0, lambdaAdv: 0, lambdaConf: 1, lambdaIe: 0, lambdaAttn: 0, lambdaSparse: 0, lambdaTv: 0, lambdaBn: 0, lrG: 3e-3 });
    const conf: number[] = [];
    for (let i = 0; i < 12; i++) {
      T.manualSeed(100); // same latents every step: the change is the generator's
      conf.push(T.tidy(() => m.synthesize(ctx, i).logs['G/conf']!));
    }
    assert.ok(conf[11]! < conf[0]! - 0.02, `G/conf ${conf[0]} → ${conf[11]}`);
    m.dispose();
  });

  test('the BatchNorm statistics prior: tgan’s generator and deepinv’s canvases lower it (G/bn falls); a teacher without BatchNorm is an error', () => {
    const ctx = context();
    const m = createDetectMethod('tgan', ctx, { lambdaBn: 1, lambdaSet: 0, lambdaAttn: 0, lambdaTv: 0, lrG: 3e-3 });
    const bn: number[] = [];
    for (let i = 0; i < 8; i++) {
      T.manualSeed(100);
      bn.push(T.tidy(() => m.synthesize(ctx, i).logs['G/bn']!));
    }
    assert.ok(bn[7]! < bn[0]! && bn[4]! < bn[0]!, `tgan G/bn ${bn[0]} → ${bn[7]}`);
    m.dispose();
    const inv = createDetectMethod('deepinv', ctx, { alphaBn: 1, stepsPerBatch: 12, inversionSteps: 3 });
    const logs = Array.from({ length: 3 }, (_, i) => T.tidy(() => inv.synthesize(ctx, i).logs));
    assert.ok(logs[2]!['G/bn']! < logs[0]!['G/bn']!, `deepinv G/bn ${logs[0]!['G/bn']} → ${logs[2]!['G/bn']}`);
    inv.dispose();
    const plain = createDetector('detr-student-64', { ...TINY, stem: 'patch' });
    freezeDetector(plain);
    for (const [name, h] of [['tgan', { lambdaBn: 1 }], ['deepinv', { alphaBn: 1 }]] as const) {
      assert.throws(() => createDetectMethod(name, { ...ctx, teacher: plain }, h), /needs a teacher with BatchNorm layers; this one \(stem 'patch'\) has none/);
    }
  });

  test('tgan fresh batches: student steps after the first get new canvases (no gradient); λ_adv > 0 needs them off', () => {
    const ctx = context();
    const m = createDetectMethod('tgan', ctx, { freshBatches: 1, studentSteps: 3, lambdaBn: 0 });
    T.manualSeed(5);
    const x = T.keep(m.synthesize(ctx, 0).x);
    const a = T.keep(m.extraBatch!(ctx, 1));
    const b = T.keep(m.extraBatch!(ctx, 2));
    assert.deepEqual(a.shape, x.shape);
    assert.equal(a.requiresGrad, false);
    assert.ok(a.sub(x).abs().max().item() > 0.1 && a.sub(b).abs().max().item() > 0.1, 'each fresh batch is new');
    const reuse = createDetectMethod('tgan', ctx, { freshBatches: 0, lambdaBn: 0 });
    assert.equal(reuse.extraBatch, undefined, 'off: student steps reuse the batch');
    reuse.dispose();
    const whole = createDetectMethod('tgan', ctx, { layout: 0, lambdaBn: 0 });
    assert.deepEqual(whole.extraBatch!(ctx, 1).shape, [ctx.batchSize, 1, 32, 32], 'whole canvases too');
    whole.dispose();
    assert.throws(() => createDetectMethod('tgan', ctx, { lambdaAdv: 1, lambdaBn: 0 }), /--lambda-adv > 0 needs --fresh-batches 0/);
    assert.doesNotThrow(() => createDetectMethod('tgan', ctx, { lambdaAdv: 1, freshBatches: 0, lambdaBn: 0 }).dispose());
    T.dispose([x, a, b]);
    m.dispose();
  });

  test('dfad: the generator raises the matched discrepancy', () => {
    const ctx = context();
    const m = createDetectMethod('dfad', ctx, { threshold: 0, lrG: 3e-3 });
    const d: number[] = [];
    for (let i = 0; i < 10; i++) {
      T.manualSeed(100);
      d.push(T.tidy(() => m.synthesize(ctx, i).logs['G/discrepancy']!));
    }
    assert.ok(d[9]! > d[0]!, `discrepancy ${d[0]} → ${d[9]}`);
    m.dispose();
  });

  test('deepinv: canvas optimisation lowers the teacher’s set loss on the sampled targets; batches are banked', () => {
    const ctx = context();
    const m = createDetectMethod('deepinv', ctx, { stepsPerBatch: 12, inversionSteps: 3 });
    const logs = Array.from({ length: 4 }, (_, i) => T.tidy(() => m.synthesize(ctx, i).logs));
    assert.ok(logs[3]!['G/set']! < logs[0]!['G/set']!, `G/set ${logs[0]!['G/set']} → ${logs[3]!['G/set']}`);
    assert.equal(logs[3]!['G/banked'], 1);
    m.dispose();
  });
});

describe('runs', () => {
  const teacherDir = path.join(tmp, 'teacher');
  const makeTeacher = (): void => {
    if (fs.existsSync(teacherDir)) return;
    T.manualSeed(2);
    const data = loadDetectionDataset(SPEC, 'val');
    // The teacher preset at 32×32 (16 tokens): bigger than the student preset, quick to evaluate.
    const t = createDetector('detr-teacher-64', { imageSize: 32 });
    fs.mkdirSync(teacherDir, { recursive: true });
    publishDetector(teacherDir, t, detectorCard({ model: 'detr-teacher-64', modelOverrides: { imageSize: 32 }, dataset: SPEC }, t, data, { val_map: 0 }));
  };
  const cfg = (method: string, iterations: number): DetectDistillConfig => ({
    task: 'detect', teacher: teacherDir, student: 'detr-student-64', method, hparams: { threshold: 0.05 },
    loop: { iterations, minutes: Infinity, batchSize: 4, seed: 0, evalEvery: 2, sampleEvery: 2, checkpointEvery: 2, cosine: false, clipNorm: 1 },
  });
  const weights = (dir: string): T.Tensor => {
    const st = T.loadTensors(path.join(dir, 'model.safetensors')).tensors;
    return T.cat(Object.keys(st).sort().map((k) => st[k]!.flatten()));
  };

  for (const method of ['tgan', 'dfad', 'deepinv', 'kd']) {
    test(`${method}: a run writes metrics, samples, result and the student`, () => {
      makeTeacher();
      const out = path.join(tmp, `run-${method}`);
      const r = runDetectDistillation({ ...cfg(method, 2), hparams: method === 'deepinv' ? { threshold: 0.05, stepsPerBatch: 2, inversionSteps: 1 } : { threshold: 0.05 } }, out)!;
      assert.equal(r.iterations, 2);
      assert.ok(r.test_map >= 0 && r.test_map <= 1 && r.student_params < r.teacher_params && r.data_free === (method !== 'kd'));
      const rows = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
      assert.ok(rows.length === 1 && typeof rows[0]!.val_map === 'number' && Number.isFinite(rows[0]!['S/set']!));
      assert.ok(fs.existsSync(path.join(out, 'samples', 'iter-000002.png')));
      assert.ok(fs.existsSync(path.join(out, 'model.safetensors')));
    });
  }

  /** Runs `total` iterations in one go and as `first` + the rest with --resume; returns the full run's folder. */
  const resumeMatches = (name: string, hparams: Record<string, number>, first: number, total: number): string => {
    makeTeacher();
    const full = path.join(tmp, `${name}-full`);
    const part = path.join(tmp, `${name}-part`);
    const c = (n: number): DetectDistillConfig => ({ ...cfg('tgan', n), hparams: { threshold: 0.05, ...hparams } });
    runDetectDistillation(c(total), full);
    runDetectDistillation(c(first), part);
    runDetectDistillation(c(total), part, { resume: true });
    assert.equal(weights(full).sub(weights(part)).abs().max().item(), 0);
    return full;
  };

  test('tgan resume (with the dense token and feature losses on): 2 + 2 iterations give the weights of 4', () => {
    const full = resumeMatches('res', { denseWeight: 1, featWeight: 1 }, 2, 4);
    const rows = fs.readFileSync(path.join(full, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    assert.ok(Number.isFinite(rows[0]!['S/dense']!), 'dense loss logged');
    assert.ok(rows[0]!['S/feat']! > 0, 'feature loss logged');
  });

  test('tgan resume with fresh batches (3 student steps per iteration): 1 + 2 iterations give the weights of 3', () => {
    resumeMatches('fresh', { freshBatches: 1, studentSteps: 3 }, 1, 3);
  });

  test('tgan --generator-process: the student, checkpoint and sample grids of one process; its resume is exact too', () => {
    makeTeacher();
    const c = (n: number, gp: boolean): DetectDistillConfig => ({ ...cfg('tgan', n), hparams: { threshold: 0.05, freshBatches: 1, studentSteps: 3 }, ...(gp ? { generatorProcess: true } : {}) });
    const one = path.join(tmp, 'gp-one');
    const two = path.join(tmp, 'gp-two');
    const part = path.join(tmp, 'gp-part');
    runDetectDistillation(c(3, false), one);
    const logs: string[] = [];
    runDetectDistillation(c(3, true), two, { log: (l) => logs.push(l) });
    assert.equal(weights(one).sub(weights(two)).abs().max().item(), 0);
    // The generator state in the checkpoint (taken from the second process) and the grids drawn from it.
    const ck = (dir: string): Record<string, T.Tensor> => T.loadTensors(path.join(dir, 'checkpoints', 'last.safetensors')).tensors;
    const [a, b] = [ck(one), ck(two)];
    const gen = Object.keys(a).filter((k) => k.startsWith('method.gen.'));
    assert.ok(gen.length > 10 && gen.every((k) => b[k] !== undefined && a[k]!.sub(b[k]!).abs().max().item() === 0));
    for (const f of ['iter-000002.png', 'iter-000003.png']) assert.ok(fs.readFileSync(path.join(one, 'samples', f)).equals(fs.readFileSync(path.join(two, 'samples', f))), f);
    assert.ok(!fs.existsSync(path.join(two, 'feed')), 'the feed folder is removed');
    assert.ok(logs.some((l) => /generator process: the training process waited \d+ s/.test(l)));
    const rows = (dir: string): Record<string, number>[] => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    assert.equal(rows(two)[0]!['G/set'], rows(one)[0]!['G/set'], 'the synthesis logs come through');
    // Resume: 1 iteration, then to 3, both with the generator process.
    runDetectDistillation(c(1, true), part);
    runDetectDistillation(c(3, true), part, { resume: true });
    assert.equal(weights(one).sub(weights(part)).abs().max().item(), 0);
  });

  test('--generator-process is refused for a synthesis that reads the student; a failing or silent generator process is reported', () => {
    makeTeacher();
    assert.throws(() => runDetectDistillation({ ...cfg('tgan', 1), hparams: { threshold: 0.05, lambdaAdv: 0.5, freshBatches: 0 }, generatorProcess: true }, path.join(tmp, 'gp-adv')), /--generator-process: tgan's synthesis reads the student at --lambda-adv > 0/);
    assert.throws(() => runDetectDistillation({ ...cfg('dfad', 1), generatorProcess: true }, path.join(tmp, 'gp-dfad')), /--generator-process: dfad's synthesis reads the student/);
    const dir = path.join(tmp, 'gp-feed');
    const broken = new GeneratorProcess({ dir, cfg: { ...cfg('tgan', 1), teacher: path.join(tmp, 'no-such-teacher') }, threads: 1, ahead: 1 }, path.join(tmp, 'none'));
    assert.throws(() => broken.batch(0, 0), /the generator process failed: teacher not found: .*no-such-teacher/);
    broken.close();
    const silent = new GeneratorProcess({ dir, cfg: cfg('tgan', 1), threads: 1, ahead: 1 }, path.join(tmp, 'none'), { timeoutSeconds: 0.05 });
    assert.throws(() => silent.batch(0, 0), /the generator process sent nothing in 0.05 s while the run waited for the canvases of iteration 0, step 0/);
    silent.close();
    assert.ok(!fs.existsSync(dir));
  });

  test('a generator process whose feed folder is gone (its run killed and resumed) exits and does not make the folder again', () => {
    makeTeacher();
    const script = path.resolve('dist/src/detect/distill/generator-main.js');
    const producer = (dir: string, c: DetectDistillConfig) =>
      spawnSync(process.execPath, [script, JSON.stringify({ dir, cfg: c, start: 0, threads: 1, ahead: 1 })], { encoding: 'utf8', timeout: 60_000 });
    // Started, then its folder removed before its first batch: it stops without writing.
    const gone = path.join(tmp, 'gp-gone', 'feed', 'x');
    const ok = producer(gone, cfg('tgan', 1));
    assert.equal(ok.status, 0, ok.stderr);
    assert.ok(!fs.existsSync(path.join(tmp, 'gp-gone')), 'no feed folder made');
    // Failing with its folder gone: the error file is not written (it would recreate the folder).
    const failed = producer(gone, { ...cfg('tgan', 1), teacher: path.join(tmp, 'no-such-teacher') });
    assert.equal(failed.status, 1);
    assert.ok(!fs.existsSync(path.join(tmp, 'gp-gone')), 'no feed folder made for the error');
  });

  test('CLI: dfkd distill --task detect, and bad input', () => {
    makeTeacher();
    const cli = path.resolve('dist/src/cli/main.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'distill', ...args, '--threads', '1'], { encoding: 'utf8', env: { ...process.env, VIT_DFKD_THREADS: '1' } });
    const out = path.join(tmp, 'cli');
    const ok = run('--task', 'detect', '--teacher', teacherDir, '--student', 'detr-student-64', '--method', 'tgan', '--iterations', '2', '--batch', '4', '--eval-every', '2', '--out', out, '--threshold', '0.05', '--generator-process');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /student test mAP@\[\.5:\.95\] \d\.\d{4}/);
    assert.ok(fs.existsSync(path.join(out, 'report.html')));
    const bad = run('--task', 'detect', '--teacher', teacherDir, '--student', 'detr-student-64', '--method', 'zskt', '--iterations', '1', '--out', path.join(tmp, 'bad'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /unknown detection method 'zskt'; available: tgan, dfad, deepinv, kd/);
    const badFlag = run('--task', 'detect', '--teacher', teacherDir, '--student', 'detr-student-64', '--method', 'dfad', '--lambda-attn', '2', '--iterations', '1', '--out', path.join(tmp, 'bad2'));
    assert.equal(badFlag.status, 1);
    assert.match(badFlag.stderr, /--lambda-attn does not apply to dfad/);
    // A detection flag on a classification run is refused too.
    const cls = run('--teacher', path.resolve('teachers/mnist-lenet5'), '--student', 'lenet5-half-28', '--method', 'dafl', '--threshold', '0.3', '--iterations', '1', '--out', path.join(tmp, 'bad3'));
    assert.equal(cls.status, 1);
    assert.match(cls.stderr, /--threshold is a detection hyper-parameter/);
    const gp = run('--teacher', path.resolve('teachers/mnist-lenet5'), '--student', 'lenet5-half-28', '--method', 'dafl', '--generator-process', '--iterations', '1', '--out', path.join(tmp, 'bad4'));
    assert.equal(gp.status, 1);
    assert.match(gp.stderr, /--generator-process is for detection distillation/);
  });
});

void ({} as DETR);

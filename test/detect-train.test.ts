// Detector training and evaluation: DETR post-processing, mAP of predictions, a supervised step
// lowers the set loss, a run checkpoints / publishes / resumes exactly, the CLI picks the detection
// task and rejects bad input.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

import * as T from '../src/index.js';
import { AdamW } from '../src/nn/optim.js';
import { createDetector } from '../src/models/detr.js';
import { loadDetectionDataset } from '../src/data/detection.js';
import { mapOf, postprocess, predict, savePredictionsPng } from '../src/detect/evaluate.js';
import { DETECT_TRAIN_DEFAULTS, detectionStep, detectTrainRun, isDetectorCheckpoint, loadDetector, publishDetector, detectorCard, type DetectTrainConfig } from '../src/detect/run.js';
import { detrSetLoss } from '../src/detect/loss.js';
import { normalize } from '../src/data/augment.js';
import { tokenTargets, DenseTokenHead } from '../src/detect/dense.js';

T.setNumThreads(1);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dfkd-detect-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SPEC = 'canvas-mnist?n=48&nval=40&ntest=40&size=32&scale=10-16&objects=1-2';
const TINY = { imageSize: 32, dim: 32, encoderDepth: 1, decoderDepth: 2, heads: 2, numQueries: 5, mlpRatio: 2 };

describe('evaluation', () => {
  test('postprocess: best object class (never "no object") and its probability', () => {
    // One image, two queries, 2 classes + no object. Query 0: no object dominates; best object class 1.
    const logits = T.tensor([[[0, Math.log(2), Math.log(7)], [Math.log(3), 0, 0]]]);
    const boxes = T.tensor([[[0.5, 0.5, 0.2, 0.2], [0.1, 0.2, 0.1, 0.1]]]);
    const [p] = postprocess(logits, boxes);
    assert.equal(p![0]!.label, 1);
    assert.ok(Math.abs(p![0]!.score - 0.2) < 1e-6);
    assert.equal(p![1]!.label, 0);
    assert.ok(Math.abs(p![1]!.score - 0.6) < 1e-6);
    assert.deepEqual(p![1]!.box.map((v) => +v.toFixed(6)), [0.1, 0.2, 0.1, 0.1]);
  });

  test('mapOf: targets as predictions → 1; an extra low-score wrong box changes nothing at AP50', () => {
    const targets = [{ labels: [3, 1], boxes: [[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.2, 0.3]] as [number, number, number, number][] }];
    const preds = [targets[0]!.labels.map((label, j) => ({ label, score: 0.9, box: targets[0]!.boxes[j]! }))];
    assert.ok(Math.abs(mapOf(preds, targets, 10).map - 1) < 1e-12);
    preds[0]!.push({ label: 3, score: 0.1, box: [0.8, 0.1, 0.1, 0.1] });
    assert.ok(Math.abs(mapOf(preds, targets, 10).ap50 - 1) < 1e-12);
  });
});

describe('dense token loss', () => {
  test('token targets: the class of the smallest box containing the token centre, else background', () => {
    // 2×2 grid, centres at 0.25 / 0.75. Box A (class 3) covers the left half; box B (class 7, smaller)
    // covers the top-left quarter → token 0: 7 (smallest), token 2: 3, tokens 1 and 3: background (10).
    const t = tokenTargets([{ labels: [3, 7], boxes: [[0.25, 0.5, 0.5, 1], [0.25, 0.25, 0.5, 0.5]] }], 2, 10);
    assert.deepEqual(Array.from(t, Number), [7, 10, 3, 10]);
  });

  test('the head’s loss is the weighted CE of its logits (background weight 0.1) and falls with training', () => {
    T.manualSeed(0);
    const head = new DenseTokenHead(4, 2);
    const tokens = T.randn([1, 4, 4]);
    const targets = [{ labels: [1], boxes: [[0.25, 0.25, 0.5, 0.5]] as [number, number, number, number][] }];
    // token 0 → class 1, tokens 1..3 → background (2)
    const logits = head.forward(tokens).reshape([4, 3]);
    const lsm = logits.logSoftmax(-1).toArray();
    const want = -(lsm[0 * 3 + 1]! + 0.1 * (lsm[1 * 3 + 2]! + lsm[2 * 3 + 2]! + lsm[3 * 3 + 2]!)) / 1.3;
    assert.ok(Math.abs(head.loss(tokens, targets).item() - want) < 1e-6);
    const opt = new AdamW(head.parameters(), { lr: 0.05 });
    const first = head.loss(tokens, targets).item();
    for (let i = 0; i < 20; i++) T.tidy(() => { const l = head.loss(tokens, targets); opt.zeroGrad(); l.backward(); opt.step(); });
    assert.ok(head.loss(tokens, targets).item() < 0.5 * first);
  });
});

describe('training', () => {
  test('supervised steps on one batch lower the DETR set loss', () => {
    T.manualSeed(0);
    const data = loadDetectionDataset(SPEC, 'train');
    const model = createDetector('detr-student-64', TINY);
    const opt = new AdamW(model.parameters(), { lr: 1e-3 });
    const x = data.images.narrow(0, 0, 8);
    const targets = data.targets.slice(0, 8);
    const lossNow = (): number => T.tidy(() => { model.eval(); const l = detrSetLoss(model.forward(normalize(x, data.mean, data.std), { aux: true }), targets).loss.item(); model.train(); return l; });
    const before = lossNow();
    for (let i = 0; i < 40; i++) detectionStep(model, opt, x, targets, data.mean, data.std, { clipNorm: 0, loss: DETECT_TRAIN_DEFAULTS.loss });
    const afterLoss = lossNow();
    assert.ok(afterLoss < 0.8 * before, `loss ${before} → ${afterLoss}`);
  });

  test('a run writes checkpoints and metrics; resume after epoch 1 gives the uninterrupted weights', () => {
    const cfg: DetectTrainConfig = { ...DETECT_TRAIN_DEFAULTS, dataset: SPEC, model: 'detr-student-64', modelOverrides: TINY, epochs: 2, batchSize: 16, lr: 1e-3 };
    const train = loadDetectionDataset(SPEC, 'train');
    const val = loadDetectionDataset(SPEC, 'val');
    const run = (out: string, stop?: number, resume = false): T.Tensor => {
      T.manualSeed(1);
      const m = createDetector('detr-student-64', TINY);
      const r = detectTrainRun(cfg, out, m, { train, val }, { stopAfterEpochs: stop, resume });
      assert.ok(r.epochs === (stop ?? 2));
      return T.cat(m.parameters().map((p) => p.detach().flatten()));
    };
    const full = run(path.join(tmp, 'full'));
    run(path.join(tmp, 'split'), 1);
    const lines = fs.readFileSync(path.join(tmp, 'split', 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 1);
    const resumed = run(path.join(tmp, 'split'), undefined, true);
    assert.equal(full.sub(resumed).abs().max().item(), 0);
    const m = JSON.parse(fs.readFileSync(path.join(tmp, 'full', 'metrics.jsonl'), 'utf8').trim().split('\n')[1]!) as Record<string, number>;
    assert.ok(m.epoch === 2 && m.val_map >= 0 && m.val_map <= 1 && Number.isFinite(m.train_loss));
    assert.ok(fs.existsSync(path.join(tmp, 'full', 'checkpoints', 'best.safetensors')));
    // A changed setting is refused on resume.
    assert.throws(() => detectTrainRun({ ...cfg, lr: 2e-3 }, path.join(tmp, 'full'), createDetector('detr-student-64', TINY), { train, val }, { resume: true }), /different settings \(lr: 0\.001 vs 0\.002\)/);
  });

  test('publish / load a detector; predictions PNG; classifier folders are not detectors', () => {
    const data = loadDetectionDataset(SPEC, 'val');
    const model = createDetector('detr-student-64', TINY).eval();
    const out = path.join(tmp, 'pub');
    fs.mkdirSync(out, { recursive: true });
    publishDetector(out, model, detectorCard({ model: 'detr-student-64', modelOverrides: TINY, dataset: SPEC }, model, data, { val_map: 0.5 }));
    assert.ok(isDetectorCheckpoint(out));
    const { model: back, card } = loadDetector(out);
    assert.equal(card.task, 'detect');
    const x = data.images.narrow(0, 0, 4);
    const a = predict(model, { images: x, mean: data.mean, std: data.std });
    const b = predict(back, { images: x, mean: data.mean, std: data.std });
    assert.deepEqual(a, b);
    savePredictionsPng(path.join(out, 'p.png'), model, data, 4);
    const png = fs.readFileSync(path.join(out, 'p.png'));
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    assert.ok(!isDetectorCheckpoint(path.join(tmp, 'nothing-here')));
    assert.throws(() => loadDetector(path.join(tmp, 'nothing-here')), /no detector at/);
  });
});

describe('CLI', () => {
  const cli = path.resolve('dist/src/cli/main.js');
  const dfkd = (...args: string[]) => spawnSync(process.execPath, [cli, ...args, '--threads', '1'], { encoding: 'utf8', env: { ...process.env, VIT_DFKD_THREADS: '1' } });

  test('dfkd train on a detection dataset: one epoch, then dfkd eval reports mAP; bad input exits 1', () => {
    const out = path.join(tmp, 'cli');
    const r = dfkd('train', '--dataset', 'canvas-mnist?n=32&size=32&scale=10-16', '--model', 'detr-student-64', '--epochs', '1', '--out', out);
    // The preset is 64×64 but the dataset 32×32: the detector is built for the dataset's size.
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /test mAP@\[\.5:\.95\] [01]\.\d{4}, AP50/);
    assert.ok(fs.existsSync(path.join(out, 'predictions.png')));
    const e = dfkd('eval', '--model', out, '--json');
    assert.equal(e.status, 0, e.stderr);
    const j = JSON.parse(e.stdout) as { map: number; ap50: number; per_class: Record<string, unknown>; params: number };
    assert.ok(j.map >= 0 && j.map <= 1 && Object.keys(j.per_class).length === 10 && j.params > 0);
    const bad = dfkd('train', '--dataset', 'canvas-mnist', '--model', 'vit-teacher-28', '--epochs', '1', '--out', path.join(tmp, 'bad'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--model must be a detector preset/);
  });
});

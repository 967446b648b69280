// The browser demo end to end: dfkd serve's server on localhost, Debian's headless Chromium driven by
// playwright-core (executablePath, no browser download), onnxruntime-web (wasm) in the page. A real
// MNIST test digit is uploaded and a digit is drawn with the mouse; the page's prediction must be
// vit-dfkd's on the very same input (logits within 1e-4), and the attention map libtorch's. A DETR
// detector runs on a generated canvas of real digits. int8: served beside their float models
// (an .int8.onnx beside the file, a run's model.int8.onnx as dfkd demo writes it, or made by
// --int8 with the quantiser calibrated on a DAFL run's synthetic images), both load and predict in
// the page, both latencies show, the float / int8 switch works, and an int8 file the browser runtime
// refuses is said so in the page. Screenshots go to test-artifacts/.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { Browser, Page } from 'playwright-core';
import * as T from '../src/index.js';
import { loadMnist } from '../src/data/mnist.js';
import { loadClassifier } from '../src/models/load.js';
import { createModel } from '../src/models/registry.js';
import { classifierToOnnx } from '../src/export/onnx.js';
import { createDetector } from '../src/models/detr.js';
import { saveCheckpoint } from '../src/export/checkpoint.js';
import { normalize } from '../src/data/augment.js';
import { maxAbsDiff } from '../src/export/ort.js';
import { startServer, type RunningServer, type ServedModel } from '../src/cli/serve.js';
import { exportDemoModels } from '../src/cli/demo.js';
import { loadOnnx, runOnnx } from '../src/export/ort.js';
import { decodeModel, metadataOf, onnx } from '../src/export/onnx-graph.js';

T.setNumThreads(1);
const REPO = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(REPO, 'test-artifacts');
const TOL = 1e-4;

/** Debian's chromium (setup.sh installs it); CHROMIUM_PATH overrides. */
function findChromium(): string | null {
  for (const p of [process.env.CHROMIUM_PATH ?? '', '/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (p && existsSync(p)) return p;
  }
  return null;
}

const chromiumPath = findChromium();
const skip = chromiumPath ? false : 'Chromium is not installed (setup.sh installs Debian\'s chromium: apt-get install chromium)';

/** A 30-iteration DAFL run against the shipped LeNet-5 teacher: its generator calibrates the int8 models (data-free). */
const runsDir = mkdtempSync(join(tmpdir(), 'dfkd-web-runs-'));
const daflRun = join(runsDir, 'dafl');
before(() => {
  const r = spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), 'distill', '--teacher', 'teachers/mnist-lenet5', '--student', 'lenet5-half-28', '--method', 'dafl', '--iterations', '30', '--threads', '1', '--out', daflRun, '--no-report'], { encoding: 'utf8', cwd: REPO, env: { ...process.env, VIT_DFKD_THREADS: '1' }, timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
});
after(() => rmSync(runsDir, { recursive: true, force: true }));

describe('dfkd serve (HTTP, no browser)', () => {
  test('models from their metadata, wasm files, real samples; no path escapes; bad models are clear errors', async () => {
    const s = await startServer({ models: [join(REPO, 'teachers/mnist-lenet5')], port: 0, host: '127.0.0.1' });
    try {
      const models = (await (await fetch(`${s.url}models.json`)).json()) as { name: string; url: string; classes: string[]; task: string }[];
      assert.deepEqual(models.map((m) => [m.name, m.task, m.classes.length]), [['mnist-lenet5', 'classification', 10]]);
      const onnxBytes = await (await fetch(new URL(models[0]!.url, s.url))).arrayBuffer();
      assert.ok(onnxBytes.byteLength > 200_000);
      const wasm = await fetch(`${s.url}ort/ort-wasm-simd-threaded.wasm`);
      assert.equal(wasm.headers.get('content-type'), 'application/wasm');
      assert.equal((await fetch(`${s.url}ort/ort.wasm.bundle.min.mjs`)).status, 200);
      const digit = await fetch(`${s.url}samples/digit/0.png`);
      assert.equal(digit.status, 200);
      assert.equal(digit.headers.get('x-label'), String(loadMnist('test').labels.toArray()[0]));
      const canvas = await fetch(`${s.url}samples/canvas/7.png`);
      assert.ok((JSON.parse(canvas.headers.get('x-objects')!) as unknown[]).length >= 1);
      assert.equal((await fetch(`${s.url}samples/digit/5000.png`)).status, 400);
      for (const p of ['..%2f..%2fpackage.json', 'ort/..%2f..%2f..%2fpackage.json', 'nope.html']) assert.equal((await fetch(`${s.url}${p}`)).status, 404, p);
      assert.equal((await fetch(`${s.url}`, { method: 'POST' })).status, 405);
    } finally {
      await s.close();
    }
    await assert.rejects(startServer({ models: ['/nonexistent/x.onnx'], port: 0, host: '127.0.0.1' }), /no ONNX file at/);
    await assert.rejects(startServer({ models: ['/nonexistent/run'], port: 0, host: '127.0.0.1' }), /no model at/);
  });

  test('int8: dfkd demo\'s export step writes model.onnx + model.int8.onnx into the run; serving the run (or its model.onnx) pairs them, accuracy and calibration from the metadata', async () => {
    const files = await exportDemoModels(daflRun);
    assert.deepEqual(files, { float: join(daflRun, 'model.onnx'), int8: join(daflRun, 'model.int8.onnx') });
    const meta = metadataOf(decodeModel(readFileSync(files.int8)));
    assert.equal(JSON.parse(meta['vit_dfkd.calibration']!).kind, 'synthetic');
    for (const given of [daflRun, files.float]) {
      const s = await startServer({ models: [given], port: 0, host: '127.0.0.1' });
      try {
        const models = (await (await fetch(`${s.url}models.json`)).json()) as ServedModel[];
        assert.deepEqual(models.map((m) => [m.name, m.precision, m.pair]), [['dafl', 'float', 'dafl.int8'], ['dafl.int8', 'int8', 'dafl']]);
        assert.equal(models[1]!.testAcc, Number(meta['vit_dfkd.test_acc_int8']));
        assert.equal(models[0]!.testAcc, Number(meta['vit_dfkd.test_acc_float']));
        assert.deepEqual(models[1]!.calibration, { kind: 'synthetic', run: daflRun, method: 'dafl', images: 256 });
        assert.equal(models[1]!.bytes, readFileSync(files.int8).length);
        assert.ok(models[0]!.bytes > 2.5 * models[1]!.bytes);
        assert.equal((await (await fetch(new URL(models[1]!.url, s.url))).arrayBuffer()).byteLength, models[1]!.bytes);
      } finally {
        await s.close();
      }
    }
  });

  test('--int8 with nothing to calibrate from (a teacher, no --calibrate-from) is a clear error naming --calibrate-from', async () => {
    await assert.rejects(startServer({ models: [join(REPO, 'teachers/mnist-lenet5')], port: 0, host: '127.0.0.1', int8: true }), /no served model could be quantised[\s\S]*mnist-lenet5: no int8 model: .*no generator.*--calibrate-from/);
  });
});

describe('browser demo (headless Chromium, onnxruntime-web wasm)', { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dfkd-web-'));
  const teacherDir = join(REPO, 'teachers/mnist-vit');
  const { model: teacher } = loadClassifier(teacherDir);
  const testSet = loadMnist('test');
  T.manualSeed(1);
  const resnet = createModel('resnet18-cifar', { widths: [8, 8, 16, 16], blocks: [1, 1, 1, 1] } as never);
  const RESNET_CARD = { preset: 'resnet18-cifar', classNames: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'], mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616], dataset: 'cifar10' };
  let server: RunningServer;
  let browser: Browser;
  let page: Page;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // A DETR detector to serve (random weights: the browser must reproduce libtorch, not detect well).
    T.manualSeed(0);
    const det = createDetector('detr-student-64');
    T.noGrad(() => {
      for (const [, p] of det.namedParameters()) if (p.ndim > 1) p.copy_(T.randn(p.shape).mul(Math.sqrt(2 / p.size(1))));
    });
    saveCheckpoint(join(tmp, 'detr', 'model'), det, {
      task: 'detect', preset: 'detr-student-64', overrides: { numClasses: 10 }, dataset: 'canvas-mnist', numClasses: 10,
      classNames: testSet.classNames, inputShape: [1, 64, 64], mean: [0.5], std: [0.5],
    });
    // A colour model served from an .onnx file that does not normalise itself (external normalisation).
    resnet.eval();
    writeFileSync(join(tmp, 'cifar-resnet.onnx'), classifierToOnnx(resnet, RESNET_CARD, { dynamicBatch: true, foldNormalization: false }).bytes);
    // A float / int8 pair whose int8 file has an operator no runtime has: the page must say it cannot run it.
    const lenetCard = loadClassifier(join(REPO, 'teachers/mnist-lenet5'));
    writeFileSync(join(tmp, 'lenet-broken.onnx'), classifierToOnnx(lenetCard.model, lenetCard.card, { dynamicBatch: true }).bytes);
    const broken = decodeModel(readFileSync(join(daflRun, 'model.int8.onnx')));
    const out = broken.graph!.output![0]!.name!;
    broken.graph!.node!.push({ opType: 'Int8OpNoRuntimeHas', input: [out], output: [`${out}_nope`] });
    writeFileSync(join(tmp, 'lenet-broken.int8.onnx'), onnx.ModelProto.encode(broken).finish());
    // --int8: the ViT and LeNet-5 teachers get int8 models calibrated on the DAFL run's synthetic images;
    // the colour ResNet cannot (the generator makes 1×28×28 images) and the detector stays float.
    server = await startServer({ models: [teacherDir, join(tmp, 'detr'), join(REPO, 'teachers/mnist-lenet5'), join(tmp, 'cifar-resnet.onnx'), join(tmp, 'lenet-broken.onnx')], port: 0, host: '127.0.0.1', int8: true, calibrateFrom: daflRun });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: chromiumPath!, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1100, height: 1100 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await page.waitForFunction(() => (window as unknown as { dfkd?: { ready: boolean } }).dfkd?.ready === true, null, { timeout: 60_000 }).catch(async (e: Error) => {
      throw new Error(`the page did not get ready: ${e.message}; status: ${await page.textContent('#status')}; errors: ${errors.join('; ')}`);
    });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  type PageState = { runs: number; detRuns: number; lastInput: number[]; lastResult: { logits: number[]; top3: { index: number; name: string; p: number }[]; attention: number[] | null } };
  const pageState = (): Promise<PageState> => page.evaluate(() => (window as unknown as { dfkd: PageState }).dfkd);

  /** vit-dfkd's logits and class-attention map on exactly the page's input (pixels in [0, 1]). */
  function torchOn(input: number[]): { logits: number[]; attention: number[] } {
    return T.inferenceMode(() => T.tidy(() => {
      const x = T.tensor(input, { shape: [1, 1, 28, 28] });
      const r = teacher.forward(normalize(x, [0.1307], [0.3081]), { returnAttention: true }) as unknown as { logits: T.Tensor; attentions: T.Tensor[]; numPrefix: number };
      const last = r.attentions[r.attentions.length - 1]!;
      return { logits: r.logits.toArray(), attention: last.select(2, 0).mean(1).narrow(1, r.numPrefix, 49).toArray() };
    }));
  }

  test('the page lists the served models from their ONNX metadata', async () => {
    const models = await page.evaluate(() => (window as unknown as { dfkd: { models: { name: string; task: string; classes: string[]; patchGrid?: number }[] } }).dfkd.models);
    assert.deepEqual(models.map((m) => [m.name, m.task]), [
      ['mnist-vit', 'classification'], ['mnist-vit.int8', 'classification'], ['detr', 'detection'], ['mnist-lenet5', 'classification'], ['mnist-lenet5.int8', 'classification'],
      ['cifar-resnet', 'classification'], ['lenet-broken', 'classification'], ['lenet-broken.int8', 'classification'],
    ]);
    assert.deepEqual(models[0]!.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.equal(models[0]!.patchGrid, 7);
  });

  test('uploading a real MNIST test digit: the page predicts what vit-dfkd predicts (and the label)', async () => {
    // The first test digits that vit-dfkd classifies correctly, one of each of two classes.
    const labels = testSet.labels.toArray();
    const preds = T.inferenceMode(() => T.tidy(() => teacher.forward(normalize(testSet.images, [0.1307], [0.3081])).logits.argmax(1).toArray()));
    const picks = [preds.findIndex((p, i) => p === labels[i] && labels[i] === 3), preds.findIndex((p, i) => p === labels[i] && labels[i] === 9)];
    for (const idx of picks) {
      assert.ok(idx >= 0);
      const px = testSet.images.narrow(0, idx, 1).contiguous().data() as Float32Array;
      const png = new PNG({ width: 28, height: 28 });
      for (let i = 0; i < 784; i++) {
        const v = Math.round(px[i]! * 255);
        png.data.set([v, v, v, 255], 4 * i);
      }
      const file = join(tmp, `digit-${idx}.png`);
      writeFileSync(file, PNG.sync.write(png));
      const before = (await pageState()).runs;
      await page.setInputFiles('#upload', file);
      await page.waitForFunction((n) => (window as unknown as { dfkd: { runs: number } }).dfkd.runs > n, before);
      const s = await pageState();
      const torch = torchOn(s.lastInput);
      const torchClass = torch.logits.indexOf(Math.max(...torch.logits));
      assert.equal(s.lastResult.top3[0]!.index, torchClass, `page ${s.lastResult.top3[0]!.index} vs vit-dfkd ${torchClass}`);
      assert.equal(torchClass, labels[idx]);
      assert.equal(await page.getAttribute('#prediction', 'data-class'), String(labels[idx]));
      assert.ok(maxAbsDiff(s.lastResult.logits, torch.logits) <= TOL, `logits ${maxAbsDiff(s.lastResult.logits, torch.logits)}`);
      assert.ok(maxAbsDiff(s.lastResult.attention!, torch.attention) <= TOL, 'attention map');
      assert.equal((await page.$$('#top3 li')).length, 3);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'web-upload.png'), fullPage: true });
  });

  test('drawing a digit with the mouse: the page predicts what vit-dfkd predicts on the same input', async () => {
    await page.click('#clear');
    const box = (await page.locator('#draw').boundingBox())!;
    const at = (x: number, y: number): [number, number] => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280];
    const before = (await pageState()).runs;
    // a "7": a top bar, then the diagonal down to the bottom
    await page.mouse.move(...at(80, 70));
    await page.mouse.down();
    for (const [x, y] of [[140, 70], [200, 70], [180, 130], [160, 180], [140, 230]] as const) await page.mouse.move(...at(x, y), { steps: 8 });
    await page.mouse.up();
    await page.waitForFunction((n) => (window as unknown as { dfkd: { runs: number } }).dfkd.runs > n, before);
    const s = await pageState();
    const torch = torchOn(s.lastInput);
    const torchClass = torch.logits.indexOf(Math.max(...torch.logits));
    assert.equal(s.lastResult.top3[0]!.index, torchClass);
    assert.ok(maxAbsDiff(s.lastResult.logits, torch.logits) <= TOL);
    assert.equal(s.lastResult.top3[0]!.name, '7', `the drawn 7 was read as ${s.lastResult.top3[0]!.name} (top-3 ${JSON.stringify(s.lastResult.top3)})`);
    const probs = s.lastResult.top3.map((t) => t.p);
    assert.ok(probs[0]! >= probs[1]! && probs[1]! >= probs[2]!);
    await page.screenshot({ path: join(ARTIFACTS, 'web-draw.png'), fullPage: true });
  });

  test('"Real test digit" with the LeNet-5 teacher selected: the page predicts what vit-dfkd predicts; no attention map for a CNN', async () => {
    const { model: lenet } = loadClassifier(join(REPO, 'teachers/mnist-lenet5'));
    // Switching models re-classifies what is on the canvas (the drawn 7): wait for that first.
    const r0 = (await pageState()).runs;
    await page.selectOption('#model', 'mnist-lenet5');
    await page.waitForFunction((n) => (window as unknown as { dfkd: { runs: number } }).dfkd.runs > n, r0);
    assert.equal((await pageState()).lastResult.top3[0]!.name, '7');
    for (let k = 0; k < 3; k++) {
      const before = (await pageState()).runs;
      await page.click('#sample');
      await page.waitForFunction((n) => (window as unknown as { dfkd: { runs: number } }).dfkd.runs > n, before);
      await page.waitForFunction(() => /MNIST test digit #\d+ \(label \d\)/.test(document.getElementById('status')!.textContent ?? ''));
      const s = await pageState();
      const logits = T.inferenceMode(() => T.tidy(() => lenet.forward(normalize(T.tensor(s.lastInput, { shape: [1, 1, 28, 28] }), [0.1307], [0.3081])).logits.toArray()));
      assert.equal(s.lastResult.top3[0]!.index, logits.indexOf(Math.max(...logits)));
      assert.ok(maxAbsDiff(s.lastResult.logits, logits) <= TOL);
      assert.equal(s.lastResult.attention, null);
    }
    assert.equal(await page.isHidden('#attention-toggle'), true);
    await page.screenshot({ path: join(ARTIFACTS, 'web-lenet.png'), fullPage: true });
    await page.selectOption('#model', 'mnist-vit');
  });

  test('a colour model (CIFAR ResNet, external normalisation): an uploaded colour image keeps its colours; logits are libtorch\'s', async () => {
    await page.selectOption('#model', 'cifar-resnet');
    const png = new PNG({ width: 32, height: 32 });
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) png.data.set([8 * x, 8 * y, 255 - 4 * (x + y), 255], 4 * (y * 32 + x));
    const file = join(tmp, 'colour.png');
    writeFileSync(file, PNG.sync.write(png));
    await page.waitForFunction(() => (window as unknown as { dfkd: { lastResult: { model: string } } }).dfkd.lastResult.model === 'cifar-resnet');
    const before = (await pageState()).runs;
    await page.setInputFiles('#upload', file);
    await page.waitForFunction((n) => (window as unknown as { dfkd: { runs: number } }).dfkd.runs > n, before);
    const s = (await page.evaluate(() => (window as unknown as { dfkd: unknown }).dfkd)) as PageState & { lastPixels: number[] };
    // the page fed the PNG's own colour planes, then (x − mean) / std
    assert.equal(s.lastPixels.length, 3 * 32 * 32);
    assert.ok(Math.abs(s.lastPixels[5]! - 40 / 255) < 1e-6 && Math.abs(s.lastPixels[1024 + 32 * 7]! - 56 / 255) < 1e-6);
    assert.ok(Math.abs(s.lastInput[0]! - (0 - 0.4914) / 0.247) < 1e-5);
    const logits = T.inferenceMode(() => T.tidy(() => resnet.forward(normalize(T.tensor(s.lastPixels, { shape: [1, 3, 32, 32] }), RESNET_CARD.mean, RESNET_CARD.std)).logits.toArray()));
    assert.ok(maxAbsDiff(s.lastResult.logits, logits) <= TOL);
    assert.equal(s.lastResult.top3[0]!.name, RESNET_CARD.classNames[logits.indexOf(Math.max(...logits))]);
    await page.screenshot({ path: join(ARTIFACTS, 'web-colour.png'), fullPage: true });
    await page.selectOption('#model', 'mnist-vit');
  });

  test('the detector runs on a generated canvas of real digits: boxes and logits are libtorch\'s', async () => {
    // A low score threshold, so that this random-weight detector draws boxes too.
    await page.fill('#threshold', '0.12');
    const before = (await pageState()).detRuns;
    await page.click('#det-generate');
    await page.waitForFunction((n) => (window as unknown as { dfkd: { detRuns: number } }).dfkd.detRuns > n, before);
    const d = await page.evaluate(() => (window as unknown as { dfkd: { lastDetections: { input: number[]; logits: number[]; boxes: number[]; detections: unknown[] } } }).dfkd.lastDetections);
    const det = createDetector('detr-student-64');
    const { loadCheckpointInto } = await import('../src/export/checkpoint.js');
    loadCheckpointInto(join(tmp, 'detr', 'model'), det);
    det.eval();
    const ref = T.inferenceMode(() => T.tidy(() => {
      const r = det.forward(normalize(T.tensor(d.input, { shape: [1, 1, 64, 64] }), [0.5], [0.5]));
      return { logits: r.logits.toArray(), boxes: r.boxes.toArray() };
    }));
    assert.ok(d.input.some((v) => v > 0.5), 'the canvas has digits');
    assert.ok(maxAbsDiff(d.logits, ref.logits) <= TOL && maxAbsDiff(d.boxes, ref.boxes) <= TOL);
    // The page's detections: queries whose best real-class probability is ≥ the threshold, as here.
    let expected = 0;
    for (let q = 0; q < 12; q++) {
      const row = ref.logits.slice(q * 11, q * 11 + 11);
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, b) => a + b, 0);
      if (Math.max(...e.slice(0, 10)) / sum >= 0.12) expected++;
    }
    assert.equal(d.detections.length, expected);
    assert.equal((await page.$$('#det-list li')).length, expected);
    await page.screenshot({ path: join(ARTIFACTS, 'web-detect.png'), fullPage: true });
  });

  type Int8State = PageState & {
    precision: string; benchRuns: number; latency: Record<string, number[]>; sessionErrors: Record<string, string>;
    byModel: Record<string, { model: string; precision: string; logits: number[]; top3: { index: number; name: string; p: number }[] }>;
    lastResult: PageState['lastResult'] & { model: string; precision: string };
  };
  const int8State = (): Promise<Int8State> => page.evaluate(() => (window as unknown as { dfkd: Int8State }).dfkd);
  const waitRuns = (key: 'runs' | 'benchRuns', n: number) => page.waitForFunction(([k, m]) => (window as unknown as { dfkd: Record<string, number> }).dfkd[k as string]! > (m as number), [key, n] as const, { timeout: 60_000 });

  test('float / int8: both load in onnxruntime-web and predict the digit, both latencies, sizes and accuracies show, the switch works', async (t) => {
    const labels = testSet.labels.toArray();
    const measured: Record<string, unknown> = {};
    for (const name of ['mnist-lenet5', 'mnist-vit']) {
      const r0 = (await int8State()).runs;
      await page.selectOption('#model', name);
      await waitRuns('runs', r0); // the switch re-classifies what is on the canvas
      let s = await int8State();
      assert.deepEqual(s.sessionErrors, {}, `onnxruntime-web could not run: ${JSON.stringify(s.sessionErrors)}`);
      assert.equal(await page.isDisabled('#precision-int8'), false);
      // a real test digit, uploaded: both models classify it, the float one is shown
      const idx = 0;
      const px = testSet.images.narrow(0, idx, 1).contiguous().data() as Float32Array;
      const png = new PNG({ width: 28, height: 28 });
      for (let i = 0; i < 784; i++) png.data.set([Math.round(px[i]! * 255), Math.round(px[i]! * 255), Math.round(px[i]! * 255), 255], 4 * i);
      const file = join(tmp, 'digit-int8.png');
      writeFileSync(file, PNG.sync.write(png));
      const r1 = s.runs;
      await page.setInputFiles('#upload', file);
      await waitRuns('runs', r1);
      s = await int8State();
      const f = s.byModel[name]!;
      const q = s.byModel[`${name}.int8`]!;
      assert.equal(s.lastResult.model, name);
      assert.equal(s.lastResult.precision, 'float');
      for (const r of [f, q]) assert.equal(r.top3[0]!.index, labels[idx], `${r.model} read test digit ${idx} (a ${labels[idx]}) as ${r.top3[0]!.name}`);
      assert.ok(maxAbsDiff(f.logits, q.logits) <= 0.5, `int8 logits ${maxAbsDiff(f.logits, q.logits)} from float`);
      // the page's int8 logits are onnxruntime-node's on the same file and input
      const bytes = new Uint8Array(await (await fetch(`${server.url}models/${name}.int8.onnx`)).arrayBuffer());
      const node = await loadOnnx(bytes, { threads: 1 });
      const ref = (await runOnnx(node, T.tensor(s.lastInput, { shape: [1, 1, 28, 28] }))).logits!.data;
      await node.session.release();
      const webVsNode = maxAbsDiff(q.logits, ref);
      assert.ok(webVsNode <= 0.05, `int8 logits: onnxruntime-web vs onnxruntime-node ${webVsNode}`);
      // the table: both rows with a latency, a size (int8: the ratio), a test accuracy from the metadata
      for (const p of ['float', 'int8']) {
        const row = `#compare tr[data-precision="${p}"]`;
        assert.equal(await page.getAttribute(row, 'data-model'), p === 'int8' ? `${name}.int8` : name);
        assert.ok(Number(await page.getAttribute(row, 'data-latency')) > 0, `${p} latency`);
        assert.match((await page.textContent(`${row} .latency`))!, /^\d+\.\d\d ms \(median of \d+\)$/);
        assert.match((await page.textContent(`${row} .acc`))!, /^\d+\.\d\d%$/);
        assert.equal(await page.getAttribute(`${row} .pred`, 'data-class'), String(labels[idx]));
      }
      assert.match((await page.textContent('#compare tr[data-precision="int8"] .size'))!, /KiB \(\d\.\d\d× smaller\)$/);
      assert.match((await page.textContent('#int8-note'))!, /calibrated on 256 synthetic images of .*dafl \(dafl\), no real image/);
      assert.equal(await page.getAttribute('#compare tr[data-precision="float"]', 'class'), 'selected');
      // switch to int8: the same input again, now shown from the int8 model
      const input = s.lastInput;
      const r2 = s.runs;
      await page.check('#precision-int8');
      await waitRuns('runs', r2);
      s = await int8State();
      assert.equal(s.lastResult.model, `${name}.int8`);
      assert.equal(s.precision, 'int8');
      assert.deepEqual(s.lastInput, input);
      assert.equal(await page.getAttribute('#prediction', 'data-class'), String(labels[idx]));
      assert.equal(await page.getAttribute('#compare tr[data-precision="int8"]', 'class'), 'selected');
      assert.match((await page.textContent('#timing'))!, /\(int8\)/);
      // time 50 runs of each, alternating: the latency window fills for both
      const b0 = s.benchRuns;
      await page.click('#bench');
      await waitRuns('benchRuns', b0);
      s = await int8State();
      assert.equal(s.latency[name]!.length, 50);
      assert.equal((s as unknown as { crossOriginIsolated: boolean }).crossOriginIsolated, true, 'COOP / COEP: microsecond timers');
      assert.equal(s.latency[`${name}.int8`]!.length, 50);
      const med = async (p: string) => Number(await page.getAttribute(`#compare tr[data-precision="${p}"]`, 'data-latency'));
      measured[name] = { float_ms: await med('float'), int8_ms: await med('int8'), float_kib: (await page.textContent('#compare tr[data-precision="float"] .size'))!, int8_kib: (await page.textContent('#compare tr[data-precision="int8"] .size'))!, web_vs_node_int8_logits: webVsNode };
      t.diagnostic(`${name}: median of 50 in onnxruntime-web (wasm, 1 thread): float ${(await med('float')).toFixed(2)} ms, int8 ${(await med('int8')).toFixed(2)} ms`);
      await page.screenshot({ path: join(ARTIFACTS, `web-int8-${name}.png`), fullPage: true });
      // and back to float
      const r3 = s.runs;
      await page.check('#precision-float');
      await waitRuns('runs', r3);
      assert.equal((await int8State()).lastResult.model, name);
    }
    writeFileSync(join(ARTIFACTS, 'web-int8-latency.json'), JSON.stringify(measured, null, 2));
  });

  test('int8 the page cannot have: an int8 file onnxruntime-web refuses is said so with its error (float goes on); a colour model says why it has none', async () => {
    const r0 = (await int8State()).runs;
    await page.selectOption('#model', 'lenet-broken');
    await waitRuns('runs', r0);
    const s = await int8State();
    assert.match(s.sessionErrors['lenet-broken.int8'] ?? '', /Int8OpNoRuntimeHas/);
    assert.equal(s.lastResult.model, 'lenet-broken');
    assert.equal(await page.isDisabled('#precision-int8'), true);
    assert.equal(await page.textContent('#compare tr[data-precision="int8"] .pred'), 'cannot run in onnxruntime-web');
    assert.match((await page.textContent('#int8-note'))!, /The int8 model lenet-broken\.int8 cannot run in onnxruntime-web \(wasm\): .*Int8OpNoRuntimeHas/);
    await page.screenshot({ path: join(ARTIFACTS, 'web-int8-refused.png'), fullPage: true });
    await page.selectOption('#model', 'cifar-resnet');
    await page.waitForFunction(() => /No int8 model for cifar-resnet/.test(document.getElementById('int8-note')!.textContent ?? ''));
    assert.match((await page.textContent('#int8-note'))!, /makes \[1, 28, 28\] images, the model takes \[3, 32, 32\]/);
    assert.equal(await page.isDisabled('#precision-int8'), true);
    await page.selectOption('#model', 'mnist-vit');
  });
});

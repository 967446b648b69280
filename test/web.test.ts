// The browser demo end to end: dfkd serve's server on localhost, Debian's headless Chromium driven by
// playwright-core (executablePath, no browser download), onnxruntime-web (wasm) in the page. A real
// MNIST test digit is uploaded and a digit is drawn with the mouse; the page's prediction must be
// vit-dfkd's on the very same input (logits within 1e-4), and the attention map libtorch's. A DETR
// detector runs on a generated canvas of real digits. Screenshots go to test-artifacts/.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
import { startServer, type RunningServer } from '../src/cli/serve.js';

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
    server = await startServer({ models: [teacherDir, join(tmp, 'detr'), join(REPO, 'teachers/mnist-lenet5'), join(tmp, 'cifar-resnet.onnx')], port: 0, host: '127.0.0.1' });
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
    assert.deepEqual(models.map((m) => [m.name, m.task]), [['mnist-vit', 'classification'], ['detr', 'detection'], ['mnist-lenet5', 'classification'], ['cifar-resnet', 'classification']]);
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
});

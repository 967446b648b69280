// Bring your own teacher: timm / Hugging Face files and folders loaded through the library and the
// CLI give the logits of an independent forward pass (src/testing/vit-checkpoints.ts); every piece
// of missing information is a clear error; dfkd import round-trips.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pngjs from 'pngjs';

import * as T from '../src/index.js';
import { loadTeacher, importTeacher, loadClassifier, type Tensor } from '../src/index.js';
import { saveTensors } from '../src/export/checkpoint.js';
import { hfViTWeights, referenceViTLogits, timmViTWeights, type FixtureViTConfig } from '../src/testing/vit-checkpoints.js';
import { createViT } from '../src/models/registry.js';
import { selectWeights } from '../src/distill/init.js';

T.manualSeed(5);
T.setNumThreads(1);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'vit-dfkd-byot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const CFG: FixtureViTConfig = { imageSize: 16, inChannels: 3, patchSize: 4, numClasses: 3, dim: 32, depth: 2, heads: 4 };
const X = T.randn([4, 3, 16, 16]);
const maxAbs = (a: Tensor, b: Tensor): number => T.tidy(() => a.double().sub(b.double()).abs().max().item());
const logits = (m: { forward(x: Tensor): { logits: Tensor } }, x = X): Tensor => T.noGrad(() => m.forward(x).logits);
const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VIT_DFKD_THREADS: '1' }, timeout: 300_000 });

/** A labelled image folder: 3 classes (a, b, c) × 3 random PNGs. */
function imageFolder(name: string, side: number): string {
  const root = join(dir, name);
  for (const c of ['a', 'b', 'c']) {
    mkdirSync(join(root, c), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const png = new pngjs.PNG({ width: side, height: side });
      for (let j = 0; j < png.data.length; j++) png.data[j] = j % 4 === 3 ? 255 : Math.floor(Math.random() * 256);
      writeFileSync(join(root, c, `${i}.png`), pngjs.PNG.sync.write(png));
    }
  }
  return root;
}

const w = timmViTWeights(CFG);
const timmFile = join(dir, 'vit-timm.safetensors');
saveTensors(timmFile, w);
const hfFile = join(dir, 'vit-hf.safetensors');
saveTensors(hfFile, hfViTWeights(w, CFG));
// A Hugging Face model folder: config.json (heads, eps, labels) and preprocessor_config.json (mean, std).
const hfDir = join(dir, 'hf-folder');
mkdirSync(hfDir);
saveTensors(join(hfDir, 'model.safetensors'), hfViTWeights(w, CFG));
writeFileSync(join(hfDir, 'config.json'), JSON.stringify({ model_type: 'vit', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, hidden_act: 'gelu', layer_norm_eps: 1e-6, image_size: 16, patch_size: 4, num_channels: 3, qkv_bias: true, id2label: { 0: 'a', 1: 'b', 2: 'c' } }));
writeFileSync(join(hfDir, 'preprocessor_config.json'), JSON.stringify({ image_mean: [0.3, 0.4, 0.5], image_std: [0.2, 0.25, 0.3] }));
const REF = referenceViTLogits(w, CFG, X);
// A Hugging Face file without config.json: LayerNorm eps 1e-12, the ViTConfig default.
const REF_HF = referenceViTLogits(w, CFG, X, 1e-12);
const FLAGS = { heads: 4, mean: '0.3,0.4,0.5', std: '0.2,0.25,0.3', classes: ['a', 'b', 'c'] };

describe('library: loadTeacher', () => {
  test('a timm file, an HF file and an HF folder give the logits of the independent reference (< 1e-5)', () => {
    for (const [path, opts, ref] of [[timmFile, FLAGS, REF], [hfFile, FLAGS, REF_HF], [hfDir, {}, REF]] as const) {
      const t = loadTeacher(path, opts);
      assert.ok(t.imported, path);
      assert.ok(maxAbs(logits(t.model), ref) < 1e-5, `${path}: ${maxAbs(logits(t.model), ref)}`);
      assert.deepEqual(t.card.mean, [0.3, 0.4, 0.5]);
      assert.deepEqual(t.card.std, [0.2, 0.25, 0.3]);
      assert.deepEqual(t.card.classNames, ['a', 'b', 'c']);
    }
    assert.ok(maxAbs(REF, referenceViTLogits(timmViTWeights(CFG), CFG, X)) > 1e-3, 'the weights must matter');
  });

  test('a distilled DeiT in HF naming (DeiTForImageClassificationWithTeacher) matches the reference too', () => {
    const c = { ...CFG, distToken: true };
    const wd = timmViTWeights(c);
    const f = join(dir, 'deit-hf.safetensors');
    saveTensors(f, hfViTWeights(wd, c, 'deit.'));
    const t = loadTeacher(f, { ...FLAGS, mean: 'imagenet', std: 'imagenet' });
    assert.ok(maxAbs(logits(t.model), referenceViTLogits(wd, c, X, 1e-12)) < 1e-5);
    assert.deepEqual(t.card.mean, [0.485, 0.456, 0.406]);
  });

  test('every missing piece is named with its flag, all in one error', () => {
    assert.throws(() => loadTeacher(timmFile), (e: Error) => /--heads/.test(e.message) && /--mean and --std/.test(e.message) && /--classes .* or --dataset/.test(e.message) && e.message.includes(timmFile));
    assert.throws(() => loadTeacher(timmFile, { ...FLAGS, heads: undefined }), /--heads <n>/);
    assert.throws(() => loadTeacher(timmFile, { ...FLAGS, std: undefined }), /--std \(given --mean alone\)/);
    assert.throws(() => loadTeacher(timmFile, { ...FLAGS, classes: ['a', 'b'] }), /has 3 classes but --classes gives 2/);
    assert.throws(() => loadTeacher(timmFile, { ...FLAGS, mean: '0.1,0.2' }), /--mean has 2 values but the model takes 3/);
    assert.throws(() => loadTeacher(timmFile, { ...FLAGS, heads: 5 }), /not divisible by 5 heads/);
    const headless = join(dir, 'headless.safetensors');
    saveTensors(headless, hfViTWeights(w, CFG, '', false));
    assert.throws(() => loadTeacher(headless, FLAGS), /no classification head/);
    // a dfkd model takes none of the import flags
    assert.throws(() => loadTeacher(join(ROOT, 'teachers/mnist-vit'), { heads: 4 }), /--heads is for timm/);
  });

  test('a folder dataset of the wrong size is an error saying which ?size to add', () => {
    const root = imageFolder('imgs-32', 20);
    assert.throws(() => loadTeacher(timmFile, { ...FLAGS, dataset: `folder:${root}` }), /32×32×3 images but the model takes 16×16×3 \(add \?size=16&channels=3\)/);
  });

  test('importTeacher writes a dfkd teacher folder that loadClassifier reads back to the same logits', () => {
    const out = join(dir, 'teacher-lib');
    importTeacher(hfFile, out, FLAGS);
    const { model, card } = loadClassifier(out);
    assert.ok(maxAbs(logits(model), REF_HF) < 1e-5);
    assert.equal(card.preset, 'vit');
    assert.equal(card.numClasses, 3);
  });
});

describe('CLI', () => {
  test('dfkd import round-trips; dfkd eval on a folder uses the teacher normalisation (confusion = the reference\'s)', () => {
    const out = join(dir, 'teacher-cli');
    const r = cli('import', timmFile, '--out', out, '--heads', '4', '--mean', '0.3,0.4,0.5', '--std', '0.2,0.25,0.3', '--classes', 'a,b,c');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(maxAbs(logits(loadClassifier(out).model), REF) < 1e-5);
    const root = imageFolder('imgs-16', 16);
    const spec = `folder:${root}?size=16&channels=3&val=0&test=0`;
    // the reference on the same images, normalised with the teacher's mean / std
    const data = T.loadDataset(spec, 'train');
    const mean = T.tensor([0.3, 0.4, 0.5]).reshape([1, 3, 1, 1]);
    const std = T.tensor([0.2, 0.25, 0.3]).reshape([1, 3, 1, 1]);
    const pred = referenceViTLogits(w, CFG, data.images.sub(mean).div(std)).argmax(1).toArray() as number[];
    const labels = data.labels.toArray() as number[];
    const want = [0, 1, 2].map((i) => [0, 1, 2].map((j) => labels.filter((l, k) => l === i && pred[k] === j).length));
    for (const model of [out, timmFile]) {
      const extra = model === timmFile ? ['--heads', '4', '--mean', '0.3,0.4,0.5', '--std', '0.2,0.25,0.3'] : [];
      const e = cli('eval', '--model', model, '--dataset', spec, '--split', 'train', '--json', ...extra);
      assert.equal(e.status, 0, e.stderr);
      const res = JSON.parse(e.stdout) as { confusion: number[][] };
      assert.deepEqual(res.confusion, want, model);
    }
  });

  test('a timm file without the flags: non-zero exit and an error naming them; distill needs --dataset', () => {
    const e = cli('eval', '--model', timmFile);
    assert.notEqual(e.status, 0);
    assert.match(e.stderr, /--heads/);
    assert.match(e.stderr, /--mean and --std/);
    const d = cli('distill', '--teacher', timmFile, '--student', 'vit-student-28', '--heads', '4', '--iterations', '1', '--out', join(dir, 'run-x'));
    assert.notEqual(d.status, 0);
    assert.match(d.stderr, /--dataset is needed/);
  });

  test('a DeiT-Ti-shaped distilled teacher (224×224×3, HF folder) distils into deit-tiny-student-2 for 2 iterations', () => {
    const c: FixtureViTConfig = { imageSize: 224, inChannels: 3, patchSize: 16, numClasses: 3, dim: 192, depth: 3, heads: 3, distToken: true };
    const wd = timmViTWeights(c);
    const folder = join(dir, 'deit-hf');
    mkdirSync(folder);
    saveTensors(join(folder, 'model.safetensors'), hfViTWeights(wd, c, 'deit.'));
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ model_type: 'deit', num_attention_heads: 3, layer_norm_eps: 1e-6, id2label: { 0: 'a', 1: 'b', 2: 'c' } }));
    const root = imageFolder('imgs-224', 40);
    const out = join(dir, 'run-deit');
    const r = cli('distill', '--teacher', folder, '--student', 'deit-tiny-student-2', '--method', 'tgan', '--iterations', '2', '--batch', '2', '--eval-every', '1', '--sample-every', '100', '--checkpoint-every', '100', '--no-report',
      '--mean', 'imagenet', '--std', 'imagenet', '--dataset', `folder:${root}?size=224&channels=3&val=0.34&test=0.34`, '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { iterations: number; student_init: string };
    assert.equal(res.iterations, 2);
    assert.equal(res.student_init, 'select');
    const { model } = loadClassifier(out);
    assert.deepEqual(model.inputShape, [3, 224, 224]);
    assert.ok(maxAbs(logits(loadClassifier(join(out, 'teacher')).model, T.randn([1, 3, 224, 224])), T.zeros([1, 3])) > 0);
  });
});

test('weight selection from a distilled DeiT: the student position embedding is the class token\'s and the patches\', not the dist token\'s', () => {
  const teacher = createViT('vit-teacher-28', { distToken: true });
  const student = createViT('vit-student-28');
  selectWeights(teacher, student);
  const tp = teacher.posEmbed;
  const want = T.cat([tp.narrow(1, 0, 1), tp.narrow(1, 2, tp.size(1) - 2)], 1);
  const sel = want.indexSelect(2, T.tensor(Array.from({ length: 48 }, (_, i) => 2 * i), { dtype: 'int64' }));
  assert.equal(maxAbs(student.posEmbed, sel), 0);
});

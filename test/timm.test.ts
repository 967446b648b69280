// Import of timm / Hugging Face ViT and DeiT .safetensors files: files written here with known
// random weights under each library's key names must give the same logits as setting the weights
// directly; every problem is reported at once; position embeddings are resampled as timm does.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as T from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { VisionTransformer } from '../src/models/vit.js';
import { hfViTWeights, timmViTWeights, type FixtureViTConfig } from '../src/testing/vit-checkpoints.js';
import { createViT, PRESETS } from '../src/models/registry.js';
import { saveTensors } from '../src/export/checkpoint.js';
import { detectNaming, loadTimmViT, resamplePosEmbed, timmConfigFromFile, TimmImportError } from '../src/export/timm.js';

T.manualSeed(3);
T.setNumThreads(1);

const dir = mkdtempSync(join(tmpdir(), 'vit-dfkd-timm-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Cfg = FixtureViTConfig;
const timmWeights = timmViTWeights;
const hfWeights = hfViTWeights;
const CFG: Cfg = { imageSize: 16, inChannels: 3, patchSize: 4, numClasses: 5, dim: 32, depth: 2, heads: 4 };

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, `shapes differ: [${a.shape}] vs [${b.shape}]`);
  return T.tidy(() => a.sub(b).abs().max().item());
}

function file(name: string, tensors: Record<string, Tensor>): string {
  const path = join(dir, name);
  saveTensors(path, tensors);
  return path;
}

const X = T.randn([3, 3, 16, 16]);
const logitsOf = (m: VisionTransformer, x = X): Tensor => T.noGrad(() => m.eval().forward(x).logits);

// ---------------------------------------------------------------------------------------------

describe('timm naming', () => {
  test('a timm-style file gives the same logits as loadStateDict of the same weights (float32, < 1e-6)', () => {
    const w = timmWeights(CFG);
    const path = file('timm.safetensors', w);
    const a = new VisionTransformer(CFG);
    const res = loadTimmViT(path, a);
    const b = new VisionTransformer(CFG);
    b.loadStateDict(w);
    assert.equal(res.naming, 'timm');
    assert.equal(res.interpolatedPosEmbed, false);
    assert.deepEqual(res.ignored, []);
    assert.deepEqual(res.missing, []);
    assert.deepEqual([...res.loaded].sort(), Object.keys(w).sort());
    assert.ok(maxAbsDiff(logitsOf(a), logitsOf(b)) < 1e-6);
    for (const [k, t] of Object.entries(w)) assert.equal(maxAbsDiff(a.stateDict()[k]!, t), 0, k);
  });

  test('F16 and BF16 files convert to float32 (the values are the rounded ones, exactly)', () => {
    const w = timmWeights(CFG);
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const low = Object.fromEntries(Object.entries(w).map(([k, t]) => [k, t.to(dtype)]));
      const m = new VisionTransformer(CFG);
      loadTimmViT(file(`timm-${dtype}.safetensors`, low), m);
      for (const [k, t] of Object.entries(low)) {
        const p = m.stateDict()[k]!;
        assert.equal(p.dtype, 'float32', k);
        assert.equal(maxAbsDiff(p, t.float()), 0, `${dtype} ${k}`);
      }
    }
  });
});

describe('Hugging Face naming', () => {
  test('separate query / key / value give the same logits as the timm-style file of the same weights', () => {
    const w = timmWeights(CFG);
    const a = new VisionTransformer(CFG);
    loadTimmViT(file('same-timm.safetensors', w), a);
    const h = new VisionTransformer(CFG);
    const res = loadTimmViT(file('same-hf.safetensors', hfWeights(w, CFG)), h);
    assert.equal(res.naming, 'hf');
    assert.equal(maxAbsDiff(logitsOf(a), logitsOf(h)), 0);
    assert.ok(maxAbsDiff(logitsOf(h), logitsOf(new VisionTransformer(CFG))) > 1e-3, 'the weights must matter');
  });

  test('a bare ViTModel (no prefix, no classifier) loads into a headless ViT; its pooler is ignored', () => {
    const c = { ...CFG, numClasses: 0 };
    const w = timmWeights(CFG);
    const hf = hfWeights(w, c, '', false);
    hf['pooler.dense.weight'] = T.randn([c.dim, c.dim]);
    hf['pooler.dense.bias'] = T.randn([c.dim]);
    const m = new VisionTransformer(c);
    const res = loadTimmViT(file('vitmodel.safetensors', hf), m);
    assert.deepEqual(res.ignored.sort(), ['pooler.dense.bias', 'pooler.dense.weight']);
    // the same file, but with a classifier, into the headless model: one clear error
    hf['classifier.weight'] = T.randn([7, c.dim]);
    hf['classifier.bias'] = T.randn([7]);
    assert.throws(() => loadTimmViT(file('vitmodel-head.safetensors', hf), new VisionTransformer(c)), /7-class head but the model has none/);
    assert.equal(maxAbsDiff(m.stateDict()['blocks.1.attn.qkv.weight']!, w['blocks.1.attn.qkv.weight']!), 0);
  });

  test('detectNaming tells the two apart', () => {
    assert.deepEqual(detectNaming(['blocks.0.attn.qkv.weight', 'cls_token']), { naming: 'timm', prefix: '' });
    assert.deepEqual(detectNaming(['classifier.weight', 'deit.embeddings.cls_token']), { naming: 'hf', prefix: 'deit.' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('errors', () => {
  test('a missing, an unexpected and a mis-shaped key are listed together in one error naming the file; nothing is copied', () => {
    const w = timmWeights(CFG);
    delete w['blocks.1.norm2.bias'];
    w['blocks.0.attn.extra_scale'] = T.ones([1]);
    w['head.bias'] = T.zeros([6]);
    const path = file('broken.safetensors', w);
    const m = new VisionTransformer(CFG);
    const before = m.stateDict()['cls_token']!.clone();
    assert.throws(
      () => loadTimmViT(path, m),
      (e: unknown) => {
        assert.ok(e instanceof TimmImportError);
        assert.ok(e.message.includes('broken.safetensors') && e.message.includes(path), e.message);
        assert.match(e.message, /missing keys \(1\): blocks\.1\.norm2\.bias/);
        assert.match(e.message, /unexpected keys \(1\): blocks\.0\.attn\.extra_scale/);
        assert.match(e.message, /shape mismatch for head\.bias: model has \[5\], checkpoint has \[6\]/);
        assert.deepEqual([e.missing, e.unexpected, e.mismatched.map((x) => x.key)], [['blocks.1.norm2.bias'], ['blocks.0.attn.extra_scale'], ['head.bias']]);
        return true;
      },
    );
    assert.equal(maxAbsDiff(m.stateDict()['cls_token']!, before), 0);
  });

  test('strict: false ignores unexpected keys and keeps missing ones, but a shape mismatch still fails', () => {
    const w = timmWeights(CFG);
    delete w['norm.bias'];
    w['fc_norm.weight'] = T.ones([CFG.dim]);
    const m = new VisionTransformer(CFG);
    const res = loadTimmViT(file('loose.safetensors', w), m, { strict: false });
    assert.deepEqual(res.ignored, ['fc_norm.weight']);
    assert.deepEqual(res.missing, ['norm.bias']);
    assert.ok(res.notes.some((n) => n.includes('fc_norm.weight')));
    assert.throws(() => loadTimmViT(file('loose.safetensors', w), new VisionTransformer({ ...CFG, numClasses: 7 }), { strict: false }), /head\.weight.*\n?.*numClasses: 5/s);
  });

  test("a 'module.'-prefixed (DDP) state dict gets a hint to strip the prefix", () => {
    const w = Object.fromEntries(Object.entries(timmWeights(CFG)).map(([k, t]) => [`module.${k}`, t]));
    assert.throws(() => loadTimmViT(file('ddp.safetensors', w), new VisionTransformer(CFG)), /'module\.' prefix/);
  });

  test('HF errors name the Hugging Face keys', () => {
    const hf = hfWeights(timmWeights(CFG), CFG);
    delete hf['vit.encoder.layer.1.attention.attention.key.weight'];
    assert.throws(() => loadTimmViT(file('hf-broken.safetensors', hf), new VisionTransformer(CFG)), /blocks\.1\.attn\.qkv\.weight \(checkpoint vit\.encoder\.layer\.1\.attention\.attention\.key\.weight\)/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('position-embedding resampling', () => {
  test('4×4 → 8×8 keeps the prefix token embedding exactly and gives [1, 1 + 64, D]; the same grid changes nothing', () => {
    const pos = T.randn([1, 17, 8]);
    const up = resamplePosEmbed(pos, 8, 1);
    assert.deepEqual(up.shape, [1, 65, 8]);
    assert.equal(maxAbsDiff(up.narrow(1, 0, 1), pos.narrow(1, 0, 1)), 0);
    const same = resamplePosEmbed(pos, 4, 1);
    assert.equal(maxAbsDiff(same, pos), 0);
    assert.ok(!same.isSame(pos), 'a copy, owned by the caller');
    // a constant grid stays constant (the resampling weights sum to one), per channel
    const flat = T.cat([T.randn([1, 2, 3]), T.tensor([[[1, -2, 3]]]).expand([1, 9, 3])], 1);
    const flatUp = resamplePosEmbed(flat, 5, 2);
    assert.ok(maxAbsDiff(flatUp.narrow(1, 2, 25), T.tensor([[[1, -2, 3]]]).expand([1, 25, 3])) < 1e-5);
    assert.equal(maxAbsDiff(flatUp.narrow(1, 0, 2), flat.narrow(1, 0, 2)), 0);
  });

  test('tokens are a row-major grid: bilinear 2×2 → 4×4 gives torch.nn.functional.interpolate\'s values', () => {
    // channel 0 holds [[0, 1], [2, 3]], channel 1 its negative; F.interpolate(..., size=4,
    // mode='bilinear', align_corners=False) of [[0, 1], [2, 3]] is the matrix below.
    const grid = [0, 1, 2, 3];
    const pos = T.tensor([[[9, 9], ...grid.map((v) => [v, -v])]]);
    const up = resamplePosEmbed(pos, 4, 1, { interpolation: 'bilinear', antialias: false });
    const want = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3];
    assert.deepEqual(up.select(2, 0).toArray(), [9, ...want]);
    assert.deepEqual(up.select(2, 1).toArray(), [9, ...want.map((v) => -v)]);
  });

  test('loading a 4×4-grid checkpoint into a 32×32 model (8×8 grid) resamples pos_embed and says so', () => {
    for (const distToken of [false, true]) {
      const w = timmWeights({ ...CFG, distToken });
      const m = new VisionTransformer({ ...CFG, imageSize: 32, distToken });
      const res = loadTimmViT(file(`grid4-${distToken}.safetensors`, w), m);
      const prefix = distToken ? 2 : 1;
      assert.equal(res.interpolatedPosEmbed, true);
      assert.ok(res.notes.some((n) => n.includes('4×4') && n.includes('8×8')), res.notes.join('; '));
      assert.deepEqual(m.posEmbed.shape, [1, 64 + prefix, CFG.dim]);
      assert.equal(maxAbsDiff(m.posEmbed.narrow(1, 0, prefix), w['pos_embed']!.narrow(1, 0, prefix)), 0);
      assert.equal(maxAbsDiff(m.posEmbed, resamplePosEmbed(w['pos_embed']!, 8, prefix)), 0);
      const out = T.noGrad(() => m.eval().forward(T.randn([1, 3, 32, 32])).logits);
      assert.deepEqual(out.shape, [1, CFG.numClasses]);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('DeiT distillation token', () => {
  test('a dist-token checkpoint loads into a distToken model (same logits as loadStateDict), timm and HF DeiT names', () => {
    const c = { ...CFG, distToken: true };
    const w = timmWeights(c);
    const a = new VisionTransformer(c);
    loadTimmViT(file('deit-dist.safetensors', w), a);
    const b = new VisionTransformer(c);
    b.loadStateDict(w);
    assert.ok(maxAbsDiff(logitsOf(a), logitsOf(b)) < 1e-6);
    // DeiTForImageClassificationWithTeacher: deit.embeddings.distillation_token, cls_classifier, distillation_classifier
    const hf = hfWeights(w, c, 'deit.', false);
    Object.assign(hf, {
      'deit.embeddings.distillation_token': w['dist_token']!,
      'cls_classifier.weight': w['head.weight']!, 'cls_classifier.bias': w['head.bias']!,
      'distillation_classifier.weight': w['head_dist.weight']!, 'distillation_classifier.bias': w['head_dist.bias']!,
    });
    const h = new VisionTransformer(c);
    loadTimmViT(file('deit-dist-hf.safetensors', hf), h);
    assert.equal(maxAbsDiff(logitsOf(h), logitsOf(b)), 0);
  });

  test('into a model without a distillation token it fails clearly', () => {
    const path = file('deit-dist-2.safetensors', timmWeights({ ...CFG, distToken: true }));
    assert.throws(
      () => loadTimmViT(path, new VisionTransformer(CFG)),
      (e: unknown) => {
        assert.ok(e instanceof TimmImportError);
        assert.match(e.message, /deit-dist-2\.safetensors/);
        assert.match(e.message, /distillation token.*distToken: true/);
        assert.deepEqual(e.unexpected.sort(), ['dist_token', 'head_dist.bias', 'head_dist.weight']);
        return true;
      },
    );
    // and the other way round
    assert.throws(() => loadTimmViT(file('plain.safetensors', timmWeights(CFG)), new VisionTransformer({ ...CFG, distToken: true })), /distToken: false/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('timmConfigFromFile', () => {
  test('infers width, depth, patch, channels, classes, image size, MLP ratio, qkv bias and dist token; heads must be given', () => {
    const c = { ...CFG, distToken: true };
    const w = timmWeights(c);
    const path = file('infer.safetensors', w);
    const got = timmConfigFromFile(path, { heads: 4 });
    assert.equal(got.naming, 'timm');
    assert.deepEqual(got.config, { ...c, mlpRatio: 4, qkvBias: true, layerNormEps: 1e-6 });
    assert.throws(() => timmConfigFromFile(path), /heads cannot be inferred from tensor shapes: pass \{ heads \} or \{ preset \}$/);
    const wide = file('infer-wide.safetensors', timmWeights({ ...CFG, dim: 128, heads: 2, depth: 1 }));
    assert.throws(() => timmConfigFromFile(wide), /heads = 2 for width 128/);
    // the inferred config builds a model the file loads into
    const m = new VisionTransformer(got.config);
    loadTimmViT(path, m);
    const hf = timmConfigFromFile(file('infer-hf.safetensors', hfWeights(timmWeights(CFG), CFG)), { heads: 2 });
    assert.equal(hf.naming, 'hf');
    assert.deepEqual(hf.config, { ...CFG, heads: 2, distToken: false, mlpRatio: 4, qkvBias: true, layerNormEps: 1e-12 });
  });

  test('a preset supplies the heads, and must agree with the file', () => {
    const v = createViT('vit-tiny-28');
    const path = file('preset.safetensors', v.stateDict());
    const pc = PRESETS['vit-tiny-28'].config;
    const got = timmConfigFromFile(path, { preset: 'vit-tiny-28' });
    assert.equal(got.config.heads, pc.heads);
    assert.equal(got.config.dim, pc.dim);
    assert.equal(got.config.imageSize, pc.imageSize);
    assert.throws(() => timmConfigFromFile(path, { preset: 'deit_tiny_patch16_224' }), /does not describe this file/);
    assert.throws(() => timmConfigFromFile(path, { preset: 'lenet5-28' }), /not a ViT/);
  });
});

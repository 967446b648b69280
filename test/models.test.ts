// The CNNs of the data-free literature (DAFL's LeNet-5 / LeNet-5-Half, the CIFAR ResNets), the
// model registry across families, and the analytic FLOP / parameter counts against hand-worked
// totals and published figures.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { F, type Tensor } from '../src/index.js';
import { LeNet5, LeNet5Half, ResNet, resnet18Cifar, resnet34Cifar } from '../src/models/cnn.js';
import { VisionTransformer } from '../src/models/vit.js';
import { countFlops, convOutSize } from '../src/models/flops.js';
import { createModel, createViT, describeModel, presetConfig, PRESETS, UnknownPresetError } from '../src/models/registry.js';
import type { Classifier } from '../src/models/types.js';

T.manualSeed(11);
T.setNumThreads(1);

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, `shapes differ: [${a.shape}] vs [${b.shape}]`);
  return T.tidy(() => a.sub(b).abs().max().item());
}

const shapesOf = (m: Classifier): Record<string, number[]> => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, t.shape]));

// ---------------------------------------------------------------------------------------------

describe('LeNet-5 (DAFL)', () => {
  test('LeNet5 on 28×28: logits [B, 10], feature = the 120-d conv3 output, and the head maps feature to logits', () => {
    const m = new LeNet5({ imageSize: 28 }).eval();
    T.tidy(() => {
      const out = m.forward(T.randn([3, 1, 28, 28]));
      assert.deepEqual(out.logits.shape, [3, 10]);
      assert.deepEqual(out.feature.shape, [3, 120]);
      assert.ok(out.feature.min().item() >= 0, 'the feature is post-ReLU');
      const again = m.fc2.forward(m.fc1.forward(out.feature).relu());
      assert.ok(maxAbsDiff(out.logits, again) < 1e-6);
    });
  });

  test('LeNet5 on 32×32 (DAFL exactly) and LeNet5Half on 28×28: shapes [B, 10] and features 120 / 60', () => {
    T.tidy(() => {
      const a = new LeNet5({ imageSize: 32 }).forward(T.randn([2, 1, 32, 32]));
      assert.deepEqual(a.logits.shape, [2, 10]);
      assert.deepEqual(a.feature.shape, [2, 120]);
      const h = new LeNet5Half({ imageSize: 28 }).forward(T.randn([2, 1, 28, 28]));
      assert.deepEqual(h.logits.shape, [2, 10]);
      assert.deepEqual(h.feature.shape, [2, 60]);
    });
  });

  test('padding 2 on 28×28 input is exactly the 32×32 network on the image zero-padded to 32', () => {
    const m28 = new LeNet5({ imageSize: 28 }).eval();
    const m32 = new LeNet5({ imageSize: 32 }).eval();
    m32.loadStateDict(m28.stateDict());
    assert.equal(m28.inputPadding, 2);
    assert.equal(m32.inputPadding, 0);
    T.tidy(() => {
      const x = T.randn([2, 1, 28, 28]);
      const a = m28.forward(x);
      const b = m32.forward(F.pad(x, [2, 2, 2, 2]));
      assert.ok(maxAbsDiff(a.logits, b.logits) < 1e-5);
      assert.ok(maxAbsDiff(a.feature, b.feature) < 1e-5);
    });
  });

  test('parameter counts: LeNet-5 61,706 and LeNet-5-Half 15,738, whatever the input size', () => {
    // LeNet-5 (DAFL, 10 classes), weights + biases:
    //   conv1 6·1·5·5 + 6     =    156
    //   conv2 16·6·5·5 + 16   =  2,416
    //   conv3 120·16·5·5 + 120 = 48,120
    //   fc1   120·84 + 84     = 10,164
    //   fc2   84·10 + 10      =    850
    //   total                   61,706
    // LeNet-5-Half: 3·25+3 = 78, 8·3·25+8 = 608, 60·8·25+60 = 12,060, 60·42+42 = 2,562, 42·10+10 = 430 → 15,738.
    assert.equal(new LeNet5({ imageSize: 32 }).numParameters(), 61_706);
    assert.equal(new LeNet5({ imageSize: 28 }).numParameters(), 61_706);
    assert.equal(new LeNet5Half({ imageSize: 28 }).numParameters(), 15_738);
  });

  test("state-dict keys and shapes are DAFL's lenet.py names (conv1..conv3, fc1, fc2)", () => {
    assert.deepEqual(shapesOf(new LeNet5({ imageSize: 28 })), {
      'conv1.weight': [6, 1, 5, 5], 'conv1.bias': [6],
      'conv2.weight': [16, 6, 5, 5], 'conv2.bias': [16],
      'conv3.weight': [120, 16, 5, 5], 'conv3.bias': [120],
      'fc1.weight': [84, 120], 'fc1.bias': [84],
      'fc2.weight': [10, 84], 'fc2.bias': [10],
    });
  });

  test('an unsupported image size or a wrong input is rejected clearly', () => {
    assert.throws(() => new LeNet5({ imageSize: 33 }), /imageSize/);
    assert.throws(() => new LeNet5({ imageSize: 28 }).forward(T.zeros([1, 1, 32, 32])), /\[B, 1, 28, 28\].*\[1, 1, 32, 32\]/);
  });
});

// ---------------------------------------------------------------------------------------------

/** The state-dict keys of the PyTorch CIFAR ResNet (kuangliu / DAFL / Fast-Datafree), written out independently. */
function torchResnetKeys(blocks: number[]): Map<string, number[]> {
  const keys = new Map<string, number[]>();
  const bn = (p: string, c: number): void => {
    keys.set(`${p}.weight`, [c]).set(`${p}.bias`, [c]).set(`${p}.running_mean`, [c]).set(`${p}.running_var`, [c]).set(`${p}.num_batches_tracked`, []);
  };
  keys.set('conv1.weight', [64, 3, 3, 3]);
  bn('bn1', 64);
  let inPlanes = 64;
  [64, 128, 256, 512].forEach((planes, s) => {
    for (let i = 0; i < blocks[s]!; i++) {
      const p = `layer${s + 1}.${i}`;
      const stride = i === 0 && s > 0 ? 2 : 1;
      keys.set(`${p}.conv1.weight`, [planes, inPlanes, 3, 3]);
      bn(`${p}.bn1`, planes);
      keys.set(`${p}.conv2.weight`, [planes, planes, 3, 3]);
      bn(`${p}.bn2`, planes);
      if (stride !== 1 || inPlanes !== planes) {
        keys.set(`${p}.shortcut.0.weight`, [planes, inPlanes, 1, 1]);
        bn(`${p}.shortcut.1`, planes);
      }
      inPlanes = planes;
    }
  });
  keys.set('linear.weight', [10, 512]).set('linear.bias', [10]);
  return keys;
}

describe('CIFAR ResNet', () => {
  test('ResNet-18 forward: logits [B, 10], feature the pooled 512-d vector, in train and eval', () => {
    const m = resnet18Cifar();
    T.tidy(() => {
      for (const mode of ['train', 'eval'] as const) {
        m.train(mode === 'train');
        const out = m.forward(T.randn([2, 3, 32, 32]));
        assert.deepEqual(out.logits.shape, [2, 10], mode);
        assert.deepEqual(out.feature.shape, [2, 512], mode);
        assert.ok(maxAbsDiff(out.logits, m.linear.forward(out.feature)) < 1e-5);
      }
    });
  });

  test('ResNet-34 forward (eval): [B, 10] and [B, 512]', () => {
    const m = resnet34Cifar().eval();
    T.tidy(() => {
      const out = T.noGrad(() => m.forward(T.randn([1, 3, 32, 32])));
      assert.deepEqual(out.logits.shape, [1, 10]);
      assert.deepEqual(out.feature.shape, [1, 512]);
    });
  });

  test('parameter counts: ResNet-18 11,173,962 and ResNet-34 21,282,122 (CIFAR, 10 classes)', () => {
    // ResNet-18 by hand: stem 3·64·9 + BN 128 = 1,856; layer1 4·(64·64·9) + 4·128 = 147,968;
    // layer2 (64·128·9 + 3·128·128·9) + 4·256 + shortcut 64·128 + 256 = 525,568;
    // layer3 (128·256·9 + 3·256·256·9) + 4·512 + 128·256 + 512 = 2,099,712;
    // layer4 (256·512·9 + 3·512·512·9) + 4·1024 + 256·512 + 1024 = 8,393,728; linear 5,130.
    // Sum: 1,856 + 147,968 + 525,568 + 2,099,712 + 8,393,728 + 5,130 = 11,173,962.
    assert.equal(1_856 + 147_968 + 525_568 + 2_099_712 + 8_393_728 + 5_130, 11_173_962);
    assert.equal(resnet18Cifar().numParameters(), 11_173_962);
    assert.equal(resnet34Cifar().numParameters(), 21_282_122);
  });

  test("state-dict keys and shapes are the PyTorch CIFAR ResNet's (conv1, bn1, layerK.i.conv1, shortcut.0/.1, linear)", () => {
    for (const [blocks, make] of [[[2, 2, 2, 2], resnet18Cifar], [[3, 4, 6, 3], resnet34Cifar]] as const) {
      const want = torchResnetKeys([...blocks]);
      const got = shapesOf(make());
      assert.deepEqual(Object.keys(got).sort(), [...want.keys()].sort());
      for (const [k, s] of want) assert.deepEqual(got[k], s, k);
    }
    assert.equal(Object.keys(resnet18Cifar().stateDict()).length, 122);
  });

  test('backward reaches the stem, and a forward / backward inside tidy frees every intermediate', () => {
    for (const m of [resnet18Cifar({ widths: [8, 16, 32, 64] }), new LeNet5Half({ imageSize: 28 })] as Classifier[]) {
      const [c, h, w] = m.inputShape;
      const x = T.randn([2, c, h, w]);
      const before = T.liveTensors();
      T.tidy(() => {
        const { logits, feature } = m.forward(x);
        logits.sum().add(feature.sum()).backward();
      });
      const gradNorm = T.tidy(() => m.parameters()[0]!.grad?.abs().sum().item() ?? 0);
      assert.ok(gradNorm > 0, `${m.constructor.name}: no gradient at the first layer`);
      m.zeroGrad();
      assert.equal(T.liveTensors(), before, `${m.constructor.name} leaked tensors`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('FLOPs', () => {
  test('a tiny ViT: hand-computed 4,520 MACs (9,040 FLOPs)', () => {
    // 8×8×3 image, patch 4 → N = 4 patches, T = 5 tokens; dim 8, 2 heads (head dim 4), MLP 16, 3 classes.
    //   patch_embed conv: 4 patches · 8 out · (3·4·4) = 1,536
    //   qkv  5·8·24 = 960;  QKᵀ 2 heads·5·5·4 = 200;  AV 200;  proj 5·8·8 = 320
    //   fc1  5·8·16 = 640;  fc2 5·16·8 = 640
    //   head (class token only) 8·3 = 24
    //   total 1,536 + 960 + 200 + 200 + 320 + 640 + 640 + 24 = 4,520
    const m = new VisionTransformer({ imageSize: 8, inChannels: 3, patchSize: 4, numClasses: 3, dim: 8, depth: 1, heads: 2, mlpRatio: 2 });
    const c = countFlops(m);
    assert.equal(c.macs, 4_520);
    assert.equal(c.flops, 9_040);
    assert.equal(c.params, m.numParameters());
    const by = Object.fromEntries(c.perLayer.map((l) => [l.name, l.macs]));
    assert.equal(by['blocks.0.attn.qk'], 200);
    assert.equal(by['blocks.0.attn.av'], 200);
    // with a distillation token: T = 6 and a second head
    const d = new VisionTransformer({ imageSize: 8, inChannels: 3, patchSize: 4, numClasses: 3, dim: 8, depth: 1, heads: 2, mlpRatio: 2, distToken: true });
    // 1,536 + 6·8·24 + 2·(6·6·8) + 6·64 + 2·(6·8·16) + 2·24 = 1,536 + 1,152 + 576 + 384 + 1,536 + 48
    assert.equal(countFlops(d).macs, 5_232);
    assert.equal(countFlops(d).params, d.numParameters());
  });

  test('LeNet-5: hand-computed 416,520 MACs; LeNet-5-Half 133,740', () => {
    // conv1 6 maps 28×28 · 1·5·5 = 117,600;  pool → 14×14
    // conv2 16 maps 10×10 · 6·5·5 = 240,000;  pool → 5×5
    // conv3 120 maps 1×1 · 16·5·5 = 48,000;  fc1 120·84 = 10,080;  fc2 84·10 = 840
    // total 416,520 (the same for the padded 28×28 and the 32×32 network)
    for (const s of [28, 32]) {
      const c = countFlops(new LeNet5({ imageSize: s }));
      assert.equal(c.macs, 416_520);
      assert.equal(c.flops, 833_040);
      assert.equal(c.params, 61_706);
    }
    // Half: 3·784·25 = 58,800; 8·100·3·25 = 60,000; 60·8·25 = 12,000; 60·42 = 2,520; 42·10 = 420
    assert.equal(countFlops(new LeNet5Half({ imageSize: 28 })).macs, 133_740);
  });

  test('CIFAR ResNet-18: hand-computed 555,422,720 MACs', () => {
    // stem 32·32·64·27 = 1,769,472; layer1 4 convs · 32·32·64·576 = 150,994,944;
    // layers 2-4 each: 18,874,368 + 3·37,748,736 + shortcut 2,097,152 = 134,217,728; linear 5,120
    assert.equal(1_769_472 + 150_994_944 + 3 * 134_217_728 + 5_120, 555_422_720);
    const m = resnet18Cifar();
    const c = countFlops(m);
    assert.equal(c.macs, 555_422_720);
    assert.equal(c.params, m.numParameters());
    assert.equal(convOutSize(32, 3, 2, 1), 16);
  });

  test('DeiT presets: analytic params match the published counts, DeiT-Ti 1.2537 GMACs by hand', () => {
    // DeiT-Ti: N = 196, T = 197, D = 192, MLP 768. patch 196·192·768 = 28,901,376; per block
    // qkv 21,786,624 + QKᵀ 7,451,328 + AV 7,451,328 + proj 7,262,208 + fc1 29,048,832 + fc2 29,048,832
    // = 102,049,152, × 12 = 1,224,589,824; head 192,000 → 1,253,683,200.
    const ti = describeModel('deit_tiny_patch16_224');
    assert.equal(ti.macs, 1_253_683_200);
    assert.equal(ti.params, 5_717_416);
    assert.equal(describeModel('deit_small_patch16_224').params, 22_050_664);
    assert.equal(describeModel('deit_base_patch16_224').params, 86_567_656);
    assert.deepEqual(ti.inputShape, [3, 224, 224]);
  });

  test('every small preset: countFlops / describeModel params equal the built model, and the two agree', () => {
    for (const name of Object.keys(PRESETS)) {
      if (name.startsWith('deit_small') || name.startsWith('deit_base')) continue;
      const m = createModel(name);
      const c = countFlops(m);
      const d = describeModel(name);
      assert.equal(c.params, m.numParameters(), name);
      assert.equal(d.params, c.params, name);
      assert.equal(d.flops, c.flops, name);
      assert.deepEqual(d.inputShape, m.inputShape, name);
      assert.equal(d.family, PRESETS[name]!.family, name);
      m.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('registry', () => {
  test('the new presets build the right classes with their input shapes and classes', () => {
    const expect: [string, Function, [number, number, number]][] = [
      ['lenet5-28', LeNet5, [1, 28, 28]],
      ['lenet5-half-28', LeNet5Half, [1, 28, 28]],
      ['resnet18-cifar', ResNet, [3, 32, 32]],
      ['resnet34-cifar', ResNet, [3, 32, 32]],
      ['vit-tiny-28', VisionTransformer, [1, 28, 28]],
    ];
    for (const [name, cls, shape] of expect) {
      const m = createModel(name);
      assert.ok(m instanceof cls, `${name} is a ${m.constructor.name}`);
      assert.deepEqual(m.inputShape, shape, name);
      assert.equal(m.numClasses, 10, name);
      m.dispose();
    }
    assert.equal(createModel('lenet5-half-28').config.constructor, Object);
    assert.equal(describeModel('resnet34-cifar').family, 'resnet34');
    assert.deepEqual(describeModel('lenet5-28'), {
      name: 'lenet5-28', family: 'lenet5', description: PRESETS['lenet5-28'].description,
      params: 61_706, flops: 833_040, macs: 416_520, inputShape: [1, 28, 28], numClasses: 10,
    });
  });

  test('overrides apply (numClasses: 100), and keys the family lacks are rejected with its options listed', () => {
    const m = createModel('resnet18-cifar', { numClasses: 100 });
    assert.equal(m.numClasses, 100);
    assert.deepEqual(m.linear.weight.shape, [100, 512]);
    assert.equal(createModel('vit-tiny-28', { numClasses: 3 }).numClasses, 3);
    assert.throws(() => createModel('lenet5-28', { patchSize: 4 }), /lenet5-28.*patchSize.*options: .*numClasses/);
    assert.deepEqual(presetConfig('lenet5-28', { numClasses: 5, imageSize: undefined }), { imageSize: 28, inChannels: 1, numClasses: 5 });
  });

  test('an unknown preset fails with UnknownPresetError listing every available preset', () => {
    for (const f of [() => createModel('resnet50-cifar'), () => describeModel('lenet6'), () => presetConfig('nope')]) {
      assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof UnknownPresetError);
        for (const n of ['vit-tiny-28', 'lenet5-28', 'lenet5-half-28', 'resnet18-cifar', 'resnet34-cifar', 'deit_tiny_patch16_224']) assert.ok(e.message.includes(n), `${n} not listed`);
        return true;
      });
    }
    assert.throws(() => createModel('toString'), UnknownPresetError);
  });

  test('createViT builds ViT presets only; ViTs satisfy Classifier (inputShape, numClasses)', () => {
    const v = createViT('vit-student-28');
    assert.deepEqual(v.inputShape, [1, 28, 28]);
    assert.equal(v.numClasses, 10);
    assert.throws(() => createViT('lenet5-28'), /lenet5.*not a ViT/);
    const asClassifier: Classifier = v;
    const out = T.noGrad(() => asClassifier.forward(T.randn([1, 1, 28, 28])));
    assert.deepEqual(out.feature.shape, [1, PRESETS['vit-student-28'].config.dim]);
  });
});

// Generators (shapes, output range, patchify/unpatchify, class conditioning, gradient flow, state
// dicts), the image bank (FIFO eviction, uniform seeded sampling, resume) and DeepInversion's jitter.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { linear } from '../src/tensor/functional.js';
import type { Tensor } from '../src/index.js';
import { VisionTransformer } from '../src/models/vit.js';
import { DCGANGenerator, TransformerGenerator, patchify, unpatchify } from '../src/models/generators.js';
import { ImageBank } from '../src/distill/bank.js';
import { randomAffine, randomJitterFlip, randomJitterFlipWithInfo } from '../src/distill/augment.js';
import { gradcheck } from '../src/testing/gradcheck.js';

T.manualSeed(5);
T.setNumThreads(1);

const MEAN = [0.5, 0.4, 0.3];
const STD = [0.2, 0.25, 0.3];

const maxAbsDiff = (a: Tensor, b: Tensor): number => T.tidy(() => a.sub(b).abs().max().item());

/** Every value of channel c lies in [(0 − mean_c)/std_c, (1 − mean_c)/std_c]. */
function assertInNormalisedRange(x: Tensor): void {
  T.tidy(() => {
    for (let c = 0; c < MEAN.length; c++) {
      const ch = x.select(1, c);
      const lo = (0 - MEAN[c]!) / STD[c]!;
      const hi = (1 - MEAN[c]!) / STD[c]!;
      assert.ok(ch.min().item() >= lo - 1e-5, `channel ${c}: min ${ch.min().item()} < ${lo}`);
      assert.ok(ch.max().item() <= hi + 1e-5, `channel ${c}: max ${ch.max().item()} > ${hi}`);
    }
  });
}

/** Sum of |grad| of a parameter after backward (0 when it got none). */
function gradNorm(p: Tensor): number {
  const g = p.grad;
  if (!g) return 0;
  const v = T.tidy(() => g.abs().sum().item());
  g.dispose();
  return v;
}

describe('DCGANGenerator (DAFL)', () => {
  const make = (): DCGANGenerator => new DCGANGenerator({ latentDim: 8, imageSize: 8, channels: 3, baseChannels: 4, mean: MEAN, std: STD });

  test('z [B, latent] → images [B, C, H, W] inside the normalised range of pixels in [0, 1]', () => {
    const g = make();
    T.tidy(() => {
      const z = g.latent(4);
      assert.deepEqual(z.shape, [4, 8]);
      const x = g.forward(z.mul(5)); // large latents saturate tanh: the range is still respected
      assert.deepEqual(x.shape, [4, 3, 8, 8]);
      assertInNormalisedRange(x);
      assert.deepEqual(g.outputShape, [3, 8, 8]);
    });
    g.dispose();
  });

  test("DAFL's layout: 28 → initial 7×7 map of 2·base channels; sizes not divisible by 4 are refused", () => {
    const g = new DCGANGenerator({ latentDim: 4, imageSize: 28, channels: 1, baseChannels: 2, mean: [0.5], std: [0.5] });
    assert.equal(g.initSize, 7);
    assert.deepEqual(g.l1.weight.shape, [4 * 7 * 7, 4]);
    T.tidy(() => assert.deepEqual(g.forward(g.latent(2)).shape, [2, 1, 28, 28]));
    assert.throws(() => new DCGANGenerator({ latentDim: 4, imageSize: 30, channels: 1, mean: [0.5], std: [0.5] }), /multiple of 4/);
    g.dispose();
  });

  test('the gradient of a loss on the images reaches the first layer', () => {
    const g = make();
    T.tidy(() => g.forward(g.latent(3)).square().mean().backward());
    assert.ok(gradNorm(g.l1.weight) > 0);
    assert.ok(gradNorm(g.conv3.weight) > 0);
    g.dispose();
  });

  test('stateDict / loadStateDict round trip: same images in eval mode (mean/std are not weights)', () => {
    const a = make();
    const b = make();
    T.tidy(() => a.forward(a.latent(4))); // moves the BN running statistics
    b.loadStateDict(a.stateDict());
    assert.ok(!Object.keys(a.stateDict()).some((k) => k.startsWith('affine')), 'normalisation constants are not saved');
    a.eval();
    b.eval();
    T.tidy(() => {
      const z = a.latent(2);
      assert.ok(maxAbsDiff(a.forward(z), b.forward(z)) < 1e-6);
    });
    a.dispose();
    b.dispose();
  });
});

describe('patchify / unpatchify', () => {
  test('unpatchify ∘ patchify is the identity, on a known image', () => {
    T.tidy(() => {
      const x = T.arange(0, 2 * 2 * 4 * 4, 1, { dtype: 'float32' }).reshape([2, 2, 4, 4]);
      const p = patchify(x, 2);
      assert.deepEqual(p.shape, [2, 4, 8]);
      // patch 1 of image 0 is the top-right 2×2 block: channel 0 pixels (0,2),(0,3),(1,2),(1,3) = 2, 3, 6, 7,
      // then channel 1 (+16): 18, 19, 22, 23
      assert.deepEqual(p.select(0, 0).select(0, 1).toArray(), [2, 3, 6, 7, 18, 19, 22, 23]);
      assert.equal(maxAbsDiff(unpatchify(p, 2, 2), x), 0);
    });
  });

  test('tokens numbered n give the image whose pixel (y, x) is the grid index (y/p)·G + x/p', () => {
    T.tidy(() => {
      // 3×3 grid of 2×2 patches, 1 channel: token n is filled with n
      const tokens = T.arange(0, 9, 1, { dtype: 'float32' }).reshape([1, 9, 1]).expand([1, 9, 4]);
      const img = unpatchify(tokens, 2, 1).toArray();
      for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) assert.equal(img[y * 6 + x], Math.floor(y / 2) * 3 + Math.floor(x / 2));
    });
  });

  test("patchify matches the ViT's patch embedding (token order and within-patch order)", () => {
    const vit = new VisionTransformer({ imageSize: 8, inChannels: 3, patchSize: 4, numClasses: 2, dim: 6, depth: 1, heads: 2 });
    T.tidy(() => {
      const x = T.randn([2, 3, 8, 8]);
      const w = vit.patchEmbed.proj.weight.reshape([6, 3 * 4 * 4]);
      const viaPatchify = linear(patchify(x, 4), w, vit.patchEmbed.proj.bias);
      assert.ok(maxAbsDiff(viaPatchify, vit.patchEmbed.forward(x)) < 1e-5);
    });
    vit.dispose();
  });
});

describe('TransformerGenerator (tgan)', () => {
  const cfg = { latentDim: 8, imageSize: 8, channels: 3, patchSize: 4, dim: 8, depth: 2, heads: 2, mean: MEAN, std: STD };

  test('shapes and the normalised range', () => {
    const g = new TransformerGenerator(cfg);
    T.tidy(() => {
      const x = g.forward(g.latent(3).mul(50));
      assert.deepEqual(x.shape, [3, 3, 8, 8]);
      assertInNormalisedRange(x);
    });
    assert.equal(g.numPatches, 4);
    g.dispose();
  });

  test('class-conditional: the same z with different labels gives different images; labels are required', () => {
    const g = new TransformerGenerator({ ...cfg, numClasses: 5 });
    T.tidy(() => {
      const z = g.latent(1).expand([2, 8]);
      const x = g.forward(z, T.tensor([0, 3], { dtype: 'int64' }));
      assert.ok(maxAbsDiff(x.select(0, 0), x.select(0, 1)) > 1e-4, 'labels change the image');
      const same = g.forward(z, T.tensor([2, 2], { dtype: 'int64' }));
      assert.ok(maxAbsDiff(same.select(0, 0), same.select(0, 1)) < 1e-6, 'same z and label: same image');
      assert.throws(() => g.forward(z), /class-conditional/);
    });
    const u = new TransformerGenerator(cfg);
    T.tidy(() => assert.throws(() => u.forward(u.latent(1), T.tensor([0], { dtype: 'int64' })), /unconditional/));
    g.dispose();
    u.dispose();
  });

  test('labelInitStd: the label embedding starts at that std, cut at ±2σ (default: timm’s 0.02)', () => {
    T.manualSeed(3);
    const big = new TransformerGenerator({ ...cfg, dim: 64, numClasses: 50, labelInitStd: 1 });
    const w = big.labelEmbed!.weight;
    const std = w.std().item();
    assert.ok(std > 0.8 && std < 1, `std ${std} (a ±2σ-truncated N(0, 1) has std 0.88)`);
    assert.ok(w.abs().max().item() <= 2);
    const small = new TransformerGenerator({ ...cfg, dim: 64, numClasses: 50 });
    const s = small.labelEmbed!.weight.std().item();
    assert.ok(s > 0.015 && s < 0.025, `default std ${s}`);
    big.dispose();
    small.dispose();
  });

  test('the gradient reaches the first layer, the position and the label embeddings', () => {
    const g = new TransformerGenerator({ ...cfg, numClasses: 5 });
    T.tidy(() => g.forward(g.latent(2), T.tensor([1, 4], { dtype: 'int64' })).square().mean().backward());
    assert.ok(gradNorm(g.toTokens.weight) > 0);
    assert.ok(gradNorm(g.posEmbed) > 0);
    assert.ok(gradNorm(g.labelEmbed!.weight) > 0);
    g.dispose();
  });

  test('timm-style init: linear weights have std .02, biases are zero', () => {
    const g = new TransformerGenerator({ ...cfg, dim: 32 });
    T.tidy(() => {
      const w = g.toTokens.weight;
      const std = w.std().item();
      assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
      assert.equal(g.toPixels.bias!.abs().max().item(), 0);
    });
    g.dispose();
  });

  test('stateDict round trip reproduces the images', () => {
    const a = new TransformerGenerator({ ...cfg, numClasses: 3 });
    const b = new TransformerGenerator({ ...cfg, numClasses: 3 });
    b.loadStateDict(a.stateDict());
    T.tidy(() => {
      const z = a.latent(2);
      const y = T.tensor([0, 2], { dtype: 'int64' });
      assert.ok(maxAbsDiff(a.forward(z, y), b.forward(z, y)) < 1e-6);
    });
    a.dispose();
    b.dispose();
  });
});

describe('ImageBank', () => {
  /** n constant images [1, 2, 2] with values from, from + 1, ... */
  const batch = (from: number, n: number): Tensor =>
    T.arange(from, from + n, 1, { dtype: 'float32' }).reshape([n, 1, 1, 1]).expand([n, 1, 2, 2]).contiguous();
  /** The value of each image of a batch. */
  const ids = (x: Tensor): number[] => T.tidy(() => x.mean([1, 2, 3]).toArray());

  test('FIFO: adding past capacity evicts the oldest images first', () => {
    const bank = new ImageBank(5);
    T.tidy(() => bank.add(batch(0, 3)));
    assert.equal(bank.size, 3);
    T.tidy(() => bank.add(batch(3, 4))); // 0..6 seen, capacity 5 → 2..6 kept
    assert.equal(bank.size, 5);
    T.tidy(() => assert.deepEqual(ids(bank.stateDict()['bank.images']!), [2, 3, 4, 5, 6]));
    T.tidy(() => bank.add(batch(7, 1)));
    T.tidy(() => assert.deepEqual(ids(bank.stateDict()['bank.images']!), [3, 4, 5, 6, 7]));
    T.tidy(() => bank.add(batch(10, 7))); // more than capacity in one batch: the newest 5
    T.tidy(() => assert.deepEqual(ids(bank.stateDict()['bank.images']!), [12, 13, 14, 15, 16]));
    bank.dispose();
  });

  test('sample draws uniformly from the stored images only, reproducibly under manualSeed', () => {
    const bank = new ImageBank(8);
    T.tidy(() => bank.add(batch(0, 10))); // keeps 2..9
    const counts = new Map<number, number>();
    T.tidy(() => {
      for (const v of ids(bank.sample(1600))) counts.set(v, (counts.get(v) ?? 0) + 1);
    });
    assert.deepEqual([...counts.keys()].sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 8, 9]);
    // each of 8 images: expected 200, standard deviation √(1600·⅛·⅞) ≈ 13.2; ±60 is > 4.5σ
    for (const [v, n] of counts) assert.ok(Math.abs(n - 200) < 60, `image ${v} drawn ${n} times of 1600`);
    T.manualSeed(123);
    const a = T.tidy(() => ids(bank.sample(6)));
    T.manualSeed(123);
    const b = T.tidy(() => ids(bank.sample(6)));
    assert.deepEqual(a, b);
    bank.dispose();
  });

  test('stores detached copies that survive tidy scopes and later changes of the input', () => {
    const bank = new ImageBank(4);
    const x = batch(1, 2).requiresGrad_();
    T.tidy(() => bank.add(x.mul(1)));
    T.noGrad(() => x.fill_(99));
    T.tidy(() => {
      const s = bank.sample(8);
      assert.equal(s.requiresGrad, false);
      assert.ok(ids(s).every((v) => v === 1 || v === 2));
    });
    assert.throws(() => T.tidy(() => bank.add(T.zeros([1, 1, 3, 3]))), /holds \[1, 2, 2\]/);
    assert.throws(() => new ImageBank(2).sample(1), /empty/);
    bank.dispose();
  });

  test('state round trip: same contents and the same eviction order after a resume', () => {
    const bank = new ImageBank(4);
    T.tidy(() => bank.add(batch(0, 6))); // ring wrapped: 2..5 stored, oldest at slot 2
    const state = bank.stateDict();
    assert.equal(state['bank.count']!.item(), 4);
    const resumed = new ImageBank(4);
    resumed.loadStateDict(state);
    T.dispose(state);
    assert.equal(resumed.size, 4);
    T.tidy(() => {
      bank.add(batch(6, 1));
      resumed.add(batch(6, 1));
      assert.deepEqual(ids(bank.stateDict()['bank.images']!), [3, 4, 5, 6]);
      assert.deepEqual(ids(resumed.stateDict()['bank.images']!), [3, 4, 5, 6]);
    });
    const empty = new ImageBank(3);
    const emptyState = empty.stateDict();
    assert.deepEqual(Object.keys(emptyState), ['bank.count']);
    resumed.loadStateDict(emptyState);
    assert.equal(resumed.size, 0);
    bank.dispose();
    resumed.dispose();
  });
});

describe('randomJitterFlip (DeepInversion)', () => {
  test('the output is a permutation of the input pixels: a roll by (dy, dx) and an optional flip', () => {
    T.tidy(() => {
      const x = T.randn([2, 3, 5, 6]);
      const sorted = (t: Tensor): number[] => t.flatten().sort().values.toArray();
      let sawFlip = false;
      let sawShift = false;
      for (let k = 0; k < 12; k++) {
        const { x: y, dy, dx, flipped } = randomJitterFlipWithInfo(x, 2);
        assert.ok(Math.abs(dy) <= 2 && Math.abs(dx) <= 2);
        assert.deepEqual(sorted(y), sorted(x));
        let want = x.roll([dy, dx], [2, 3]);
        if (flipped) want = want.flip(3);
        assert.equal(maxAbsDiff(y, want), 0);
        sawFlip ||= flipped;
        sawShift ||= dy !== 0 || dx !== 0;
      }
      assert.ok(sawFlip && sawShift, 'over 12 draws both a flip and a shift occur');
      assert.equal(maxAbsDiff(randomJitterFlip(x, 0, 0), x), 0, 'no shift, no flip: identity');
    });
  });

  test('differentiable: the gradient of Σ w ⊙ jitter(x) is w permuted back', () => {
    T.tidy(() => {
      const x = T.randn([1, 1, 4, 4]).requiresGrad_();
      const w = T.randn([1, 1, 4, 4]);
      const { x: y, dy, dx, flipped } = randomJitterFlipWithInfo(x, 1, 0.5);
      const [g] = T.grad(y.mul(w).sum(), [x]);
      let back = flipped ? w.flip(3) : w;
      back = back.roll([-dy, -dx], [2, 3]);
      assert.ok(maxAbsDiff(g!, back) < 1e-6);
    });
  });
});

describe('randomAffine (Plug-In Inversion views)', () => {
  test('zero zoom, shift and rotation is the identity; a pure integer shift moves pixels and fills with the given value', () => {
    T.tidy(() => {
      const x = T.randn([3, 2, 8, 8]);
      assert.ok(maxAbsDiff(randomAffine(x, { scale: 0, shift: 0, rotate: 0, fill: -1 }), x) < 1e-5);
      // Shift drawn uniformly in ±shift: compare against a roll for the draw we can recover from a probe image.
      T.manualSeed(3);
      const probe = T.zeros([1, 1, 9, 9]);
      const one = probe.clone();
      one.narrow(2, 4, 1).narrow(3, 4, 1).fill_(1); // a single bright pixel in the centre
      const y = randomAffine(one, { scale: 0, shift: 0, rotate: 90, fill: 0 });
      // A rotation about the centre keeps the centre pixel where it is.
      assert.ok(Math.abs(y.narrow(2, 4, 1).narrow(3, 4, 1).item() - 1) < 1e-5);
      // The corners of a zoomed-out view of an all-zero image are the fill value.
      const z = randomAffine(probe, { scale: 0.5, shift: 0, rotate: 0, fill: 7 });
      assert.ok(z.max().item() <= 7 + 1e-5 && z.min().item() >= -1e-5);
    });
  });

  test('per-channel fill: uncovered pixels take each channel its own value', () => {
    T.tidy(() => {
      const x = T.zeros([4, 2, 6, 6]);
      const y = randomAffine(x, { scale: 0.9, shift: 0, rotate: 0, fill: [2, -3] });
      // Zooming out by up to 1.9× uncovers the border: channel 0 lies in [0, 2], channel 1 in [−3, 0].
      assert.ok(y.select(1, 0).min().item() >= -1e-5 && y.select(1, 0).max().item() <= 2 + 1e-5);
      assert.ok(y.select(1, 1).max().item() <= 1e-5 && y.select(1, 1).min().item() >= -3 - 1e-5);
      assert.throws(() => randomAffine(x, { scale: 0, shift: 0, rotate: 0, fill: [1, 2, 3] }), /3 fill values for 2 channels/);
    });
  });

  test('differentiable with respect to the image (float64 finite differences)', () => {
    T.tidy(() => {
      const x = T.randn([2, 1, 5, 5], { dtype: 'float64' }).requiresGrad_();
      // The same random view each evaluation: reseed inside the function.
      const r = gradcheck((a) => {
        T.manualSeed(11);
        return randomAffine(a, { scale: 0.2, shift: 1, rotate: 20, fill: -0.5 });
      }, [x]);
      assert.ok(r.ok, `max relative error ${r.maxRelError}`);
    });
  });
});

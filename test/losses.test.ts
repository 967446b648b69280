// The distillation losses of METHODS.md against values worked out by hand on tiny tensors (the
// arithmetic is in the comments), and their gradients against finite differences in float64.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { gradcheck, type Tensor } from '../src/index.js';
import { VisionTransformer } from '../src/models/vit.js';
import {
  activationLoss,
  attentionConsistencyLoss,
  attentionTransferLoss,
  batchNormStatisticsLoss,
  classAttention,
  classAttentionProbe,
  informationEntropyLoss,
  jensenShannon,
  kdLoss,
  klDivergenceTS,
  l2Prior,
  matchBlocks,
  meanAbsoluteDiscrepancy,
  oneHotLoss,
  patchAttentionKL,
  patchDistillationLoss,
  patchSimilarityEntropy,
  patchSimilarityMatrix,
  patchSimilarityMSE,
  patchSimilarityPrior,
  spatialAttentionMap,
  totalVariation,
  withBatchNormPrior,
  type TokenOutput,
} from '../src/distill/losses.js';
import { BatchNorm2d } from '../src/nn/layers.js';

T.manualSeed(11);
T.setNumThreads(1);

const LN2 = Math.LN2;
const LN3 = Math.log(3);
const t = (v: unknown[], dtype: 'float32' | 'float64' = 'float64'): Tensor => T.tensor(v, { dtype });
/** The value of a scalar loss, the tensor freed. */
const val = (f: () => Tensor): number => T.tidy(() => f().item());
const close = (got: number, want: number, tol = 1e-6, msg = ''): void =>
  assert.ok(Math.abs(got - want) <= tol, `${msg} got ${got}, want ${want} (|Δ| = ${Math.abs(got - want)} > ${tol})`);
const closeAll = (got: number[], want: number[], tol = 1e-6, msg = ''): void => {
  assert.equal(got.length, want.length, `${msg} lengths ${got.length} vs ${want.length}`);
  got.forEach((g, i) => close(g, want[i]!, tol, `${msg}[${i}]`));
};

/** Block tokens [1, 1 + N, D]: a class token of zeros followed by the given patch tokens. */
function withCls(patches: number[][]): Tensor {
  const D = patches[0]!.length;
  return t([[new Array<number>(D).fill(0), ...patches]]);
}

describe('knowledge distillation and logit discrepancies', () => {
  // T = [0, ln 3] → σ(T) = [1/4, 3/4]; S = [0, 0] → σ(S) = [1/2, 1/2].
  test('kdLoss, τ = 1: KL(σ(T) ‖ σ(S)) = ¼ ln ½ + ¾ ln 3/2 = 0.1308120', () => {
    close(val(() => kdLoss(t([[0, LN3]]), t([[0, 0]]), 1)), 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5));
    close(val(() => kdLoss(t([[0, LN3]]), t([[0, 0]]), 1)), 0.130812036, 1e-8);
  });

  test('kdLoss, τ = 4: 16·Σ p ln 2p with p = σ([0, ln3/4]) = [0.4317651, 0.5682349] → 0.1494579', () => {
    // 3^¼ = 1.3160740; p = [1/(1 + 3^¼), 3^¼/(1 + 3^¼)]; σ(S/4) = [½, ½]
    // KL = 0.4317651·ln 0.8635303 + 0.5682349·ln 1.1364697 = −0.0633513 + 0.0726924 = 0.0093411; ×τ² = 16 → 0.1494579
    const q = 3 ** 0.25;
    const p = [1 / (1 + q), q / (1 + q)];
    const want = 16 * p.reduce((s, x) => s + x * Math.log(2 * x), 0);
    close(want, 0.149457865, 1e-8, 'hand value');
    close(val(() => kdLoss(t([[0, LN3]]), t([[0, 0]]), 4)), want);
  });

  test('kdLoss averages over the batch (sum over classes, mean over rows)', () => {
    // rows: the τ = 1 example (0.1308120) and T = S (0) → 0.0654060
    close(val(() => kdLoss(t([[0, LN3], [1, 2]]), t([[0, 0], [1, 2]]), 1)), 0.130812036 / 2, 1e-8);
  });

  test('kdLoss treats the teacher as a constant unless teacherGrad is set', () => {
    T.tidy(() => {
      const tl = t([[0.3, -0.2, 1.0]]).requiresGrad_();
      const sl = t([[0.1, 0.5, -0.4]]).requiresGrad_();
      const [gT, gS] = T.grad(kdLoss(tl, sl, 2), [tl, sl], { allowUnused: true });
      assert.ok(gT === null || gT.abs().max().item() === 0, 'no gradient reaches the teacher');
      assert.ok(gS!.abs().max().item() > 0);
      const [gT2] = T.grad(kdLoss(tl, sl, 2, { teacherGrad: true }), [tl]);
      assert.ok(gT2!.abs().max().item() > 0, 'teacherGrad: the generator sees the teacher path');
    });
  });

  test('gradients of kdLoss match finite differences (float64)', () => {
    const tl = t([[0.3, -0.2, 1.0], [0.9, 0.1, -1.2]]);
    const sl = t([[0.1, 0.5, -0.4], [-0.3, 0.2, 0.7]]).requiresGrad_();
    const r = gradcheck((s) => kdLoss(tl, s, 4), [sl]);
    assert.ok(r.ok, `student side: max rel error ${r.maxRelError}`);
    const tl2 = t([[0.3, -0.2, 1.0], [0.9, 0.1, -1.2]]).requiresGrad_();
    const r2 = gradcheck((a, b) => kdLoss(a, b, 2, { teacherGrad: true }), [tl2, sl]);
    assert.ok(r2.ok, `both sides: max rel error ${r2.maxRelError}`);
  });

  test('klDivergenceTS = KL(σ(T) ‖ σ(S)) batch-mean: (0.1308120 + 0)/2', () => {
    close(val(() => klDivergenceTS(t([[0, LN3], [2, 2]]), t([[0, 0], [5, 5]]))), 0.130812036 / 2, 1e-8);
  });

  test('meanAbsoluteDiscrepancy: mean(|1 − 0|, |2 − 4|) = 1.5', () => {
    close(val(() => meanAbsoluteDiscrepancy(t([[1, 2]]), t([[0, 4]]))), 1.5);
  });

  test('jensenShannon: P = [¼, ¾], Q = [½, ½], M = [⅜, ⅝] → ½(0.0353749 + 0.0322692) = 0.0338221', () => {
    // KL(P‖M) = ¼ ln(2/3) + ¾ ln(6/5) = −0.1013663 + 0.1367413 = 0.0353749
    // KL(Q‖M) = ½ ln(4/3) + ½ ln(4/5) = 0.1438410 − 0.1115718 = 0.0322692
    close(val(() => jensenShannon(t([[0, LN3]]), t([[0, 0]]))), 0.0338220756, 1e-8);
  });

  test('jensenShannon is symmetric, zero for equal inputs and at most ln 2', () => {
    const a = t([[0.3, -1.2, 2.0], [1, 0, 0]]);
    const b = t([[1.5, 0.4, -0.7], [0, 0, 3]]);
    close(val(() => jensenShannon(a, b)), val(() => jensenShannon(b, a)), 1e-12, 'symmetric');
    close(val(() => jensenShannon(a, a)), 0, 1e-12, 'zero');
    // disjoint supports (in the limit): JS → ln 2, never above; float32 too, without NaN
    const far = val(() => jensenShannon(t([[100, -100]], 'float32'), t([[-100, 100]], 'float32')));
    assert.ok(Number.isFinite(far) && far <= LN2 + 1e-6 && far > LN2 - 1e-4, `JS of disjoint = ${far}, want ln 2`);
  });
});

describe("DAFL's generator priors", () => {
  test('oneHotLoss: rows [0, ln3] (ŷ = 1: −ln ¾ = 0.2876821) and [0, 0] (ŷ = 0: ln 2) → 0.4904146', () => {
    close(val(() => oneHotLoss(t([[0, LN3], [0, 0]]))), 0.4904146265, 1e-8);
  });

  test('activationLoss = −mean |f| = −(1 + 2 + 3 + 4)/4 = −2.5', () => {
    close(val(() => activationLoss(t([[1, -2], [3, -4]]))), -2.5);
  });

  test('informationEntropyLoss = −H(mean σ): mean of [¼, ¾] and [½, ½] is [⅜, ⅝], H = 0.6615632', () => {
    // H = −(⅜ ln ⅜ + ⅝ ln ⅝) = 0.3678... + 0.2937... = 0.6615632
    close(val(() => informationEntropyLoss(t([[0, LN3], [0, 0]]))), -0.6615632382, 1e-8);
    // balanced batch: mean [½, ½] → −ln 2, the minimum for 2 classes
    close(val(() => informationEntropyLoss(t([[0, LN3], [LN3, 0]]))), -LN2, 1e-8);
    // a class no sample predicts (float32 underflow) stays finite
    const v = val(() => informationEntropyLoss(t([[0, -200], [0, -200]], 'float32')));
    assert.ok(Number.isFinite(v) && Math.abs(v) < 1e-6, `got ${v}`);
  });
});

describe('class attention and the tgan probe', () => {
  test('classAttention: row 0 of a [1, 1, 3, 3] attention, prefix dropped, renormalised', () => {
    // class row [0.5, 0.2, 0.3] → patches [0.2, 0.3] / 0.5 = [0.4, 0.6]
    const attn = t([[[[0.5, 0.2, 0.3], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]]]);
    closeAll(T.tidy(() => classAttention(attn, 1).toArray()), [0.4, 0.6], 1e-12);
  });

  test('classAttention averages heads first: rows [.5,.2,.3] and [.1,.6,.3] → [.3,.4,.3] → [4/7, 3/7]', () => {
    const other = [[0, 0.5, 0.5], [0.2, 0.2, 0.6]];
    const attn = t([[[[0.5, 0.2, 0.3], ...other], [[0.1, 0.6, 0.3], ...other]]]);
    closeAll(T.tidy(() => classAttention(attn, 1).toArray()), [4 / 7, 3 / 7], 1e-12);
    // two prefix tokens: row 0 [.3, .4, .3] keeps only the last entry → [1]
    closeAll(T.tidy(() => classAttention(attn, 2).toArray()), [1], 1e-12);
  });

  /** A small float64 ViT with non-trivial weights (attention far from uniform). */
  function tinyViT(): VisionTransformer {
    const vit = new VisionTransformer({ imageSize: 8, inChannels: 1, patchSize: 4, numClasses: 3, dim: 8, depth: 2, heads: 2 });
    vit.eval();
    T.noGrad(() => {
      for (const p of vit.parameters()) p.normal_(0, 0.4);
    });
    return vit.to('float64');
  }

  test('classAttentionProbe = head(norm(Σ_i a_i h_i)), recomputed by hand from the taps and weights', () => {
    const vit = tinyViT();
    T.tidy(() => {
      const x = T.randn([2, 1, 8, 8], { dtype: 'float64' });
      const out = vit.forward(x, { returnAttention: true, returnTokens: true });
      const got = classAttentionProbe(vit, out).toArray();
      // by hand, in JS: last block's attention [2, 2, 5, 5], tokens [2, 5, 8]
      const A = out.attentions![1]!.toArray();
      const H = out.tokens![1]!.toArray();
      const W = vit.head.stateDict()['weight']!.toArray(); // [3, 8]
      const b = vit.head.stateDict()['bias']!.toArray();
      const g = vit.norm.weight!.toArray();
      const beta = vit.norm.bias!.toArray();
      const want: number[] = [];
      for (let s = 0; s < 2; s++) {
        // a_i = mean over heads of A[s, h, 0, 1 + i], renormalised over the 4 patches
        const a = [0, 1, 2, 3].map((i) => (A[((s * 2 + 0) * 5 + 0) * 5 + 1 + i]! + A[((s * 2 + 1) * 5 + 0) * 5 + 1 + i]!) / 2);
        const z = a.reduce((u, v) => u + v, 0);
        const p = Array.from({ length: 8 }, (_, d) => a.reduce((acc, ai, i) => acc + (ai / z) * H[(s * 5 + 1 + i) * 8 + d]!, 0));
        const mu = p.reduce((u, v) => u + v, 0) / 8;
        const variance = p.reduce((u, v) => u + (v - mu) ** 2, 0) / 8;
        const y = p.map((v, d) => ((v - mu) / Math.sqrt(variance + 1e-6)) * g[d]! + beta[d]!);
        for (let k = 0; k < 3; k++) want.push(y.reduce((acc, v, d) => acc + v * W[k * 8 + d]!, b[k]!));
      }
      closeAll(got, want, 1e-10);
    });
    vit.dispose();
  });

  test('classAttentionProbe fails clearly without the attention or token taps', () => {
    const vit = tinyViT();
    T.tidy(() => {
      const out = vit.forward(T.randn([1, 1, 8, 8], { dtype: 'float64' }));
      assert.throws(() => classAttentionProbe(vit, out), /returnAttention/);
    });
    vit.dispose();
  });

  test('gradient of the probe with respect to the image matches finite differences (float64)', () => {
    const vit = tinyViT();
    const x = T.randn([1, 1, 8, 8], { dtype: 'float64' }).requiresGrad_();
    const r = gradcheck((img) => classAttentionProbe(vit, vit.forward(img, { returnAttention: true, returnTokens: true })), [x]);
    assert.ok(r.ok, `max rel error ${r.maxRelError} at ${JSON.stringify(r.worst)}`);
    vit.dispose();
  });

  test('attentionConsistencyLoss = CE(P_T, argmax T): probe [0, ln3], teacher prefers class 0 → −ln ¼', () => {
    close(val(() => attentionConsistencyLoss(t([[0, LN3]]), t([[5, 1]]))), Math.log(4), 1e-10);
    close(val(() => attentionConsistencyLoss(t([[0, LN3]]), t([[1, 5]]))), -Math.log(0.75), 1e-10);
  });
});

describe('block matching and patch distillation', () => {
  test('matchBlocks maps student block l to teacher block round((l + 1)·Dt/Ds) − 1', () => {
    // 6→3: round(2, 4, 6) − 1 = 1, 3, 5
    assert.deepEqual(matchBlocks(6, 3), [[1, 0], [3, 1], [5, 2]]);
    // 4→3: round(1.33, 2.67, 4) − 1 = 0, 2, 3
    assert.deepEqual(matchBlocks(4, 3), [[0, 0], [2, 1], [3, 2]]);
    assert.deepEqual(matchBlocks(3, 3), [[0, 0], [1, 1], [2, 2]]);
    // 12→4: 3, 6, 9, 12 → 2, 5, 8, 11
    assert.deepEqual(matchBlocks(12, 4), [[2, 0], [5, 1], [8, 2], [11, 3]]);
    // last blocks always paired, a deeper student reuses teacher blocks
    assert.deepEqual(matchBlocks(3, 6).map(([a]) => a), [0, 0, 1, 1, 2, 2]);
    assert.throws(() => matchBlocks(0, 3), RangeError);
  });

  test('patchAttentionKL: zero for identical distributions; KL([½,½] ‖ [¼,¾]) = ½ ln 2 + ½ ln ⅔ = 0.1438410', () => {
    const a = t([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]);
    close(val(() => patchAttentionKL(a, a)), 0, 1e-12);
    close(val(() => patchAttentionKL(t([[0.5, 0.5]]), t([[0.25, 0.75]]))), 0.1438410362, 1e-9);
    // batch mean: that row and an identical pair → half of it
    close(val(() => patchAttentionKL(t([[0.5, 0.5], [0.3, 0.7]]), t([[0.25, 0.75], [0.3, 0.7]]))), 0.1438410362 / 2, 1e-9);
  });

  test('patchSimilarityMatrix: parallel → 1, orthogonal → 0, opposite → −1; the class token is dropped', () => {
    // patches (1,0), (0,2), (−3,0)
    const h = withCls([[1, 0], [0, 2], [-3, 0]]);
    closeAll(T.tidy(() => patchSimilarityMatrix(h, 1).toArray()), [1, 0, -1, 0, 1, 0, -1, 0, 1], 1e-12);
  });

  test('patchSimilarityMSE: the matrices differ by ±1/√2 at four places → 4·½/9 = 2/9', () => {
    // teacher patches (1,0), (0,2), (−3,0): [[1,0,−1],[0,1,0],[−1,0,1]]
    // student patches (1,0), (1,1), (−1,0) (width 2, a prefix of 2 here): [[1,r,−1],[r,1,−r],[−1,−r,1]], r = 1/√2
    const hT = withCls([[1, 0], [0, 2], [-3, 0]]);
    const hS = t([[[9, 9], [7, 7], [1, 0], [1, 1], [-1, 0]]]);
    close(val(() => patchSimilarityMSE(hT, hS, 1, 2)), 2 / 9, 1e-12);
  });

  test('patchDistillationLoss = Σ over pairs of KL(a_T ‖ a_S) + similarity MSE (hand: 0.0566330 + 2/9)', () => {
    // teacher class row [0.4, 0.2, 0.2, 0.2] → a_T = [⅓, ⅓, ⅓]; student [0.2, 0.2, 0.2, 0.4] → a_S = [¼, ¼, ½]
    // KL = ⅓(ln 4/3 + ln 4/3 + ln 2/3) = 0.0566330; the similarity MSE of the previous test is 2/9
    const rest = [[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]];
    const attT = t([[[[0.4, 0.2, 0.2, 0.2], ...rest]]]);
    const attS = t([[[[0.2, 0.2, 0.2, 0.4], ...rest]]]);
    const hT = withCls([[1, 0], [0, 2], [-3, 0]]);
    const hS = withCls([[1, 0], [1, 1], [-1, 0]]);
    const uniform = t([[[rest[0]!, ...rest]]]);
    const teacher: TokenOutput = { attentions: [uniform, attT], tokens: [hS, hT], numPrefix: 1 };
    const student: TokenOutput = { attentions: [attS], tokens: [hS], numPrefix: 1 };
    const kl = (2 * Math.log(4 / 3) + Math.log(2 / 3)) / 3;
    close(kl, 0.0566330123, 1e-9, 'hand KL');
    close(val(() => patchDistillationLoss(teacher, student, [[1, 0]])), kl + 2 / 9, 1e-12);
    // teacher block 0 against the same student block: uniform vs [¼,¼,½] is the same KL, identical tokens → 0
    close(val(() => patchDistillationLoss(teacher, student, [[0, 0], [1, 0]])), 2 * kl + 2 / 9, 1e-12);
    close(val(() => patchDistillationLoss(teacher, student, [[1, 0]], { attention: 0 })), 2 / 9, 1e-12);
    close(val(() => patchDistillationLoss(teacher, student, [[1, 0]], { similarity: 0 })), kl, 1e-12);
    assert.throws(() => patchDistillationLoss(teacher, student, [[2, 0]]), RangeError);
  });

  test('spatialAttentionMap: mean of h² per patch, unit L2 norm; AT = ‖m_T − m_S‖₂ = √2', () => {
    // teacher patches (1,1), (2,0), (0,0): mean squares [1, 2, 0] → /√5
    const hT = withCls([[1, 1], [2, 0], [0, 0]]);
    closeAll(T.tidy(() => spatialAttentionMap(hT, 1).toArray()), [1 / Math.sqrt(5), 2 / Math.sqrt(5), 0], 1e-12);
    // student (0,0), (0,0), (3,3): [0, 0, 9] → [0, 0, 1]
    const hS = withCls([[0, 0], [0, 0], [3, 3]]);
    // ‖[1/√5, 2/√5, −1]‖ = √(1/5 + 4/5 + 1) = √2; ZSKT's code form: mean of squares = 2/3
    close(val(() => attentionTransferLoss(spatialAttentionMap(hT, 1), spatialAttentionMap(hS, 1))), Math.SQRT2, 1e-12);
    close(val(() => attentionTransferLoss(spatialAttentionMap(hT, 1), spatialAttentionMap(hS, 1), { squared: true })), 2 / 3, 1e-12);
  });
});

describe("PSAQ-ViT's patch-similarity entropy", () => {
  // patches (1,0), (0,1), (2,0): pairs (1,2), (1,3), (2,3) have cosine similarities s = [0, 1, 0]
  const h3 = (): Tensor => withCls([[1, 0], [0, 1], [2, 0]]);
  // With bandwidth h, φ_h(u) = exp(−u²/2h²)/(h√2π), p̂(x) = ⅓ Σ_j φ_h(x − s_j):
  //   p̂(0) = (2φ(0) + φ(1))/3 = (2 + e^(−1/2h²)) / (3h√2π)
  //   p̂(1) = (φ(0) + 2φ(1))/3 = (1 + 2e^(−1/2h²)) / (3h√2π)
  //   H = −⅓(2 ln p̂(0) + ln p̂(1))
  function handEntropy(h: number): number {
    const c = 3 * h * Math.sqrt(2 * Math.PI);
    const e = Math.exp(-1 / (2 * h * h));
    return -(2 * Math.log((2 + e) / c) + Math.log((1 + 2 * e) / c)) / 3;
  }

  test('at the sample points, h = 0.5: p̂(0) = 0.5679170, p̂(1) = 0.3379495, H = 0.7388063', () => {
    close(handEntropy(0.5), 0.7388062688, 1e-9, 'hand value');
    close(val(() => patchSimilarityEntropy(h3(), 1, { bandwidth: 0.5 })), 0.7388062688, 1e-9);
  });

  test("Scott's rule: h = σ̂·M^(−1/5) = (1/√3)·3^(−1/5) = 0.4634", () => {
    // s = [0, 1, 0]: mean ⅓, Σ(s − ⅓)² = 1/9 + 4/9 + 1/9 = ⅔, /(M − 1) = ⅓ → σ̂ = 1/√3
    const h = (1 / Math.sqrt(3)) * 3 ** -0.2;
    close(val(() => patchSimilarityEntropy(h3(), 1, { bandwidth: 'scott' })), handEntropy(h), 1e-9);
    close(val(() => patchSimilarityEntropy(h3(), 1)), handEntropy(h), 1e-9, 'scott is the default');
  });

  test('on a grid over [−1, 1]: one similarity s = 0 gives a Gaussian, H = ½ ln(2πe h²) = −0.8836466 for h = 0.1', () => {
    const two = withCls([[1, 0], [0, 1]]);
    close(val(() => patchSimilarityEntropy(two, 1, { bandwidth: 0.1, samplePoints: 401 })), -0.8836465598, 1e-6);
  });

  test('batch mean, and R_ps = −Σ_l H_l over blocks', () => {
    const both = T.cat([h3(), withCls([[1, 0], [0, 1], [2, 0]])], 0);
    close(val(() => patchSimilarityEntropy(both, 1, { bandwidth: 0.5 })), 0.7388062688, 1e-9);
    close(val(() => patchSimilarityPrior([h3(), h3()], 1, { bandwidth: 0.5 })), -2 * 0.7388062688, 1e-9);
  });

  test('more diverse similarities have higher entropy (what R_ps rewards)', () => {
    // all patches parallel → all similarities 1 (σ̂ = 0: the bandwidth floor) vs the spread example
    const parallel = withCls([[1, 0], [2, 0], [3, 0], [0.5, 0]]);
    const spread = withCls([[1, 0], [0, 1], [-1, 0.2], [0.6, 0.8]]);
    const hp = val(() => patchSimilarityEntropy(parallel, 1, { bandwidth: 0.1 }));
    const hs = val(() => patchSimilarityEntropy(spread, 1, { bandwidth: 0.1 }));
    assert.ok(hs > hp, `spread ${hs} should exceed parallel ${hp}`);
    assert.ok(Number.isFinite(val(() => patchSimilarityEntropy(parallel, 1))), 'Scott on identical similarities stays finite');
  });

  test('gradients match finite differences (float64): sample points with Scott, grid with fixed h', () => {
    const x = T.tensor(
      [0.1, -0.3, 0.5, 0.9, 0.2, -0.4, -0.6, 0.8, 0.3, 0.2, 0.7, -0.5, -0.9, 0.1, 0.4, 0.6, -0.2, 0.3, 0.5, 0.5, -0.8],
      { shape: [1, 7, 3], dtype: 'float64' },
    ).requiresGrad_();
    const r1 = gradcheck((h) => patchSimilarityEntropy(h, 1), [x]);
    assert.ok(r1.ok, `self/scott: max rel error ${r1.maxRelError}`);
    const r2 = gradcheck((h) => patchSimilarityEntropy(h, 1, { bandwidth: 0.3, samplePoints: 64 }), [x]);
    assert.ok(r2.ok, `grid: max rel error ${r2.maxRelError}`);
  });

  test('maxPairs uses a subset of the pairs', () => {
    const h = T.randn([2, 1 + 10, 4]);
    const v = val(() => patchSimilarityEntropy(h, 1, { maxPairs: 20 }));
    assert.ok(Number.isFinite(v));
  });
});

describe("DeepInversion's image priors", () => {
  // x = [[0, 1], [2, 4]]: horizontal Δ (−1, −2), vertical (−2, −3), anti-diagonal 2 − 1 = 1, diagonal 0 − 4 = −4
  const x = (): Tensor => t([[[[0, 1], [2, 4]]]]);
  test('totalVariation l1 = mean|h| + mean|v| + |ad| + |d| = 1.5 + 2.5 + 1 + 4 = 9', () => {
    close(val(() => totalVariation(x(), 'l1')), 9, 1e-12);
  });
  test('totalVariation l2 = (1 + 4)/2 + (4 + 9)/2 + 1 + 16 = 26', () => {
    close(val(() => totalVariation(x(), 'l2')), 26, 1e-12);
    close(val(() => totalVariation(x())), 26, 1e-12, 'l2 is the default');
  });
  test('l2Prior = mean x² = (0 + 1 + 4 + 16)/4 = 5.25', () => {
    close(val(() => l2Prior(x())), 5.25, 1e-12);
  });
  // x [N=1, C=2, 1, 2]: channel 0 = (0, 2): μ 1, σ² (biased) 1; channel 1 = (1, 1): μ 1, σ² 0.
  // Running μ (0, 4), σ² (3, 2): ‖(1, −3)‖ + ‖(−2, −2)‖ = √10 + √8.
  test('batchNormStatisticsLoss = ‖μ − μ_BN‖ + ‖σ² − σ²_BN‖ = √10 + √8 (biased variance)', () => {
    close(val(() => batchNormStatisticsLoss(t([[[[0, 2]], [[1, 1]]]]), t([0, 4]), t([3, 2]))), Math.sqrt(10) + Math.sqrt(8), 1e-12);
    assert.throws(() => batchNormStatisticsLoss(t([[[[0, 2]]]]), t([0, 4]), t([3, 2])), /expected \[N, 2, H, W\]/);
  });
  test('batchNormStatisticsLoss: gradient against finite differences (float64)', () => {
    const x = T.randn([3, 2, 2, 3], { dtype: 'float64' }).requiresGrad_();
    const r = gradcheck((v) => batchNormStatisticsLoss(v, t([0.3, -0.2]), t([2, 0.5])), [x]);
    assert.ok(r.ok, `max rel error ${r.maxRelError}`);
  });
  test('withBatchNormPrior taps each BatchNorm input during the forward pass, then removes the taps', () => {
    const bn1 = new BatchNorm2d(1);
    const bn2 = new BatchNorm2d(1);
    bn1.eval();
    bn2.eval();
    bn2.runningMean.copy_(T.tensor([0.5]));
    const x = T.tensor([[[[1, 3]]], [[[5, 7]]]]); // μ 4, σ² 5: bn1 (μ 0, σ² 1) → 4 + 4 = 8; its output (x − 0)/√(1 + ε)·1 + 0 ≈ x
    const { out, prior } = withBatchNormPrior([bn1, bn2], () => bn2.forward(bn1.forward(x)));
    // bn2 sees ≈ x again: |4 − 0.5| + |5 − 1| = 7.5
    close(prior!.item(), 8 + 7.5, 1e-3);
    assert.deepEqual(out.shape, [2, 1, 1, 2]);
    assert.equal(bn1.inputTap, null);
    assert.equal(bn2.inputTap, null);
    assert.equal(withBatchNormPrior([], () => 1).prior, null);
  });
  test('a constant image has no total variation', () => {
    close(val(() => totalVariation(T.full([2, 3, 5, 4], 0.7, { dtype: 'float64' }), 'l1')), 0, 1e-12);
  });
});

test('the losses free their intermediates: only the returned scalar survives', () => {
  const h = withCls([[1, 0], [0, 1], [2, 0]]);
  const att = t([[[[0.4, 0.2, 0.2, 0.2], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]]]);
  const out: TokenOutput = { attentions: [att], tokens: [h], numPrefix: 1 };
  const [a, b, img] = [t([[0, 1]]), t([[1, 0]]), T.ones([1, 1, 3, 3], { dtype: 'float64' })];
  const run = (): Tensor[] => [
    patchDistillationLoss(out, out, [[0, 0]]),
    patchSimilarityEntropy(h, 1),
    patchSimilarityEntropy(h, 1, { bandwidth: 0.2, samplePoints: 16 }),
    jensenShannon(a, b),
    totalVariation(img),
  ];
  T.dispose(run()); // warms the per-N pair-index cache
  const before = T.liveTensors();
  const results = run();
  assert.equal(T.liveTensors() - before, results.length);
  T.dispose(results);
  assert.equal(T.liveTensors(), before);
});

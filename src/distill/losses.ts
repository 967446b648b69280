// Every loss of METHODS.md, written once and named in the papers' words (Fast-Datafree's
// `criterions` module). Each function runs in its own tidy scope: only the returned tensor survives,
// the autograd graph keeps what backward needs.
//
// Shapes: logits [B, classes]; attention [B, heads, T, T] (T = prefix tokens + N patches); block
// tokens [B, T, D]; patch distributions [B, N]; images [B, C, H, W].
import { crossEntropy, klDiv, l1Loss, mseLoss } from '../tensor/functional.js';
import { full, keep, linspace, noGrad, randperm, stack, tensor, tidy, type Device, type Tensor } from '../tensor/tensor.js';
import type { BatchNorm2d } from '../nn/layers.js';

// ---------------------------------------------------------------------------------------------
// Knowledge distillation (Hinton et al. 2015) and the logit discrepancies of the adversarial methods

/** KL(σ(T/τ) ‖ σ(S/τ)) summed over classes, averaged over the batch, from log-probabilities. */
function softKL(teacherLogits: Tensor, studentLogits: Tensor, tau: number): Tensor {
  const logPT = teacherLogits.div(tau).logSoftmax(1);
  const logPS = studentLogits.div(tau).logSoftmax(1);
  // log-target form: exp(logPT)·(logPT − logPS) is finite even where a probability underflows
  return klDiv(logPS, logPT, 'batchmean', true);
}

/**
 * Hinton's KD loss as METHODS.md writes it: KD(T, S; τ) = τ² · KL(σ(T/τ) ‖ σ(S/τ)), summed over
 * classes and averaged over the batch (DAFL's `kdloss`: kl_div(..., size_average=False)·τ²/B).
 * The τ² keeps the gradient scale independent of τ (Hinton et al. 2015, §2).
 *
 * The teacher side is a constant (detached) for the student's loss. The generator's adversarial
 * term of `tgan` (L_adv = −KD) differentiates through the teacher too: pass `{ teacherGrad: true }`.
 */
export function kdLoss(teacherLogits: Tensor, studentLogits: Tensor, tau: number, opts: { teacherGrad?: boolean } = {}): Tensor {
  if (!(tau > 0)) throw new RangeError(`kdLoss: temperature must be > 0, got ${tau}`);
  return tidy(() => {
    const t = opts.teacherGrad ? teacherLogits : teacherLogits.detach();
    return softKL(t, studentLogits, tau).mul(tau * tau);
  });
}

/**
 * ZSKT's discrepancy (Micaelli & Storkey 2019, eq. 1–2): KL(σ(T) ‖ σ(S)), batch-mean. Nothing is
 * detached: the generator maximises it through both networks; for the student step compute the
 * teacher's logits under noGrad.
 */
export function klDivergenceTS(teacherLogits: Tensor, studentLogits: Tensor): Tensor {
  return tidy(() => softKL(teacherLogits, studentLogits, 1));
}

/**
 * DFAD's model discrepancy (Fang et al. 2019, eq. 3): mean |T(x) − S(x)| over batch and classes,
 * the MAE of the logits. Not detached (the generator maximises it through both networks).
 */
export function meanAbsoluteDiscrepancy(teacherLogits: Tensor, studentLogits: Tensor): Tensor {
  return tidy(() => l1Loss(studentLogits, teacherLogits, 'mean'));
}

/**
 * Jensen–Shannon divergence JS(P ‖ Q) = ½KL(P ‖ M) + ½KL(Q ‖ M), M = ½(P + Q), with P = σ(T/τ),
 * Q = σ(S/τ), summed over classes and averaged over the batch (natural log: 0 ≤ JS ≤ ln 2,
 * symmetric). DeepInversion's adaptive "competition" term (Yin et al. 2020, eq. 8) rewards images
 * where teacher and student disagree: its image loss adds −JS (METHODS.md `deepinv`, α_adv).
 * The published code clamps the probabilities to [0.01, 0.99] and uses 1 − JS; we use the exact JS.
 */
export function jensenShannon(teacherLogits: Tensor, studentLogits: Tensor, tau = 1): Tensor {
  return tidy(() => {
    const logP = teacherLogits.div(tau).logSoftmax(1);
    const logQ = studentLogits.div(tau).logSoftmax(1);
    // log M = logsumexp(log P, log Q) − ln 2, stable where P or Q underflow
    const logM = stack([logP, logQ], 0).logsumexp(0).sub(Math.LN2);
    const kl = (logA: Tensor): Tensor => logA.exp().mul(logA.sub(logM)).sum(1);
    return kl(logP).add(kl(logQ)).mul(0.5).mean();
  });
}

// ---------------------------------------------------------------------------------------------
// DAFL's generator priors (Chen et al. 2019, eq. 2–5)

/** DAFL's one-hot loss L_oh (eq. 2): mean CE(T(x), argmax T(x)); low when the teacher is confident. */
export function oneHotLoss(teacherLogits: Tensor): Tensor {
  return tidy(() => {
    const target = noGrad(() => teacherLogits.argmax(1));
    return crossEntropy(teacherLogits, target);
  });
}

/**
 * DAFL's activation loss L_a (eq. 3): −‖f‖₁ of the teacher's feature (`cls` for a ViT). METHODS.md
 * writes the L1 norm; we follow the reference code, `-features.abs().mean()`, the per-element
 * mean, which only rescales α (by 1/(B·F)) and makes it independent of batch and feature size.
 */
export function activationLoss(feature: Tensor): Tensor {
  return tidy(() => feature.abs().mean().neg());
}

/**
 * DAFL's information-entropy loss L_ie (eq. 4): −H(p̄), p̄ = mean over the batch of σ(T(x)).
 * Minimising it maximises the entropy of the batch's average prediction: balanced classes.
 * Natural log (the published code uses log10, which rescales β by 1/ln 10).
 */
export function informationEntropyLoss(teacherLogits: Tensor): Tensor {
  return tidy(() => {
    const B = teacherLogits.size(0);
    // log p̄ = logsumexp_b log σ(T_b) − log B: finite even for classes no sample predicts
    const logMean = teacherLogits.logSoftmax(1).logsumexp(0).sub(Math.log(B));
    return logMean.exp().mul(logMean).sum();
  });
}

// ---------------------------------------------------------------------------------------------
// Attention of a ViT: the class token's attention over the patches, and the tgan probe

/** What the ViT losses read from a forward pass run with { returnAttention, returnTokens }. */
export interface TokenOutput {
  attentions?: Tensor[];
  tokens?: Tensor[];
  /** Prefix tokens (class, distillation) before the patch tokens. */
  numPrefix: number;
}

/** The parts of a ViT the probe reuses: its final LayerNorm and its classification head. */
export interface ProbeHead {
  norm: { forward(x: Tensor): Tensor };
  head: { forward(x: Tensor): Tensor };
}

function needAttentions(out: TokenOutput, who: string): Tensor[] {
  if (!out.attentions || out.attentions.length === 0) {
    throw new Error(`${who}: the forward output has no attention maps; call forward(x, { returnAttention: true })`);
  }
  return out.attentions;
}

function needTokens(out: TokenOutput, who: string): Tensor[] {
  if (!out.tokens || out.tokens.length === 0) {
    throw new Error(`${who}: the forward output has no block tokens; call forward(x, { returnTokens: true })`);
  }
  return out.tokens;
}

/** The patch tokens [B, N, D] of block tokens [B, T, D] (the prefix tokens dropped). */
function patchTokens(tokens: Tensor, numPrefix: number): Tensor {
  if (tokens.ndim !== 3) throw new Error(`expected block tokens [B, T, D], got [${tokens.shape.join(', ')}]`);
  return tokens.slice(1, numPrefix);
}

/**
 * a^l of METHODS.md: the class token's attention row over the N patch tokens, averaged over heads
 * and renormalised to sum to 1 over the patches (the prefix tokens' share removed) → [B, N].
 * attn: one block's attention weights [B, heads, T, T] (rows = queries; the class token is query 0).
 */
export function classAttention(attn: Tensor, numPrefix: number): Tensor {
  if (attn.ndim !== 4) throw new Error(`classAttention: expected attention [B, heads, T, T], got [${attn.shape.join(', ')}]`);
  return tidy(() => {
    const a = attn.mean(1).select(1, 0).slice(1, numPrefix);
    return a.div(a.sum(1, true));
  });
}

/**
 * The class-attention probe of `tgan` (METHODS.md; Habib et al. 2024): a_T = classAttention of the
 * last block, probe feature p = Σ_i a_T,i · h^L_i over the last block's patch tokens, and probe
 * logits P_T(x) = head(norm(p)) → [B, classes]. `out` is vit.forward(x, { returnAttention: true,
 * returnTokens: true }); `vit` supplies the same model's `norm` and `head`.
 */
export function classAttentionProbe(vit: ProbeHead, out: TokenOutput): Tensor {
  const attentions = needAttentions(out, 'classAttentionProbe');
  const tokens = needTokens(out, 'classAttentionProbe');
  return tidy(() => {
    const a = classAttention(attentions[attentions.length - 1]!, out.numPrefix);
    const h = patchTokens(tokens[tokens.length - 1]!, out.numPrefix);
    const p = a.unsqueeze(1).matmul(h).squeeze(1); // [B, 1, N] · [B, N, D] → [B, D]
    return vit.head.forward(vit.norm.forward(p));
  });
}

/**
 * tgan's attention-consistency loss L_attention = CE(P_T(x), ŷ), ŷ = argmax T(x): what the teacher
 * attends to must by itself carry the teacher's decision.
 */
export function attentionConsistencyLoss(probeLogits: Tensor, teacherLogits: Tensor): Tensor {
  return tidy(() => {
    const target = noGrad(() => teacherLogits.argmax(1));
    return crossEntropy(probeLogits, target);
  });
}

// ---------------------------------------------------------------------------------------------
// Block matching and patch-level distillation (tgan's L_patch, ZSKT's attention transfer)

/**
 * Pairs [teacherBlock, studentBlock] (0-based) mapping blocks proportionally by depth: student
 * block l ↔ teacher block round((l + 1)·Dt/Ds) − 1, so the two last blocks are always paired and
 * each student block meets the teacher block at the same relative depth (6→3: [1,0],[3,1],[5,2];
 * 12→4: [2,0],[5,1],[8,2],[11,3]). Halves round up (Math.round). A deeper student reuses teacher
 * blocks (3→6: teacher 0,0,1,1,2,2).
 */
export function matchBlocks(teacherDepth: number, studentDepth: number): [number, number][] {
  if (!Number.isInteger(teacherDepth) || !Number.isInteger(studentDepth) || teacherDepth < 1 || studentDepth < 1) {
    throw new RangeError(`matchBlocks: depths must be positive integers, got ${teacherDepth} and ${studentDepth}`);
  }
  return Array.from({ length: studentDepth }, (_, l) => {
    const t = Math.max(0, Math.round(((l + 1) * teacherDepth) / studentDepth) - 1);
    return [t, l] as [number, number];
  });
}

/** Keeps log() finite where a student's attention underflows in float32. */
const ATTENTION_FLOOR = 1e-12;

/**
 * KL(a_T ‖ a_S) between two distributions over the same N patches, summed over patches and
 * averaged over the batch (tgan's L_patch attention term). Not detached: compute the teacher under
 * noGrad for the student's loss.
 */
export function patchAttentionKL(aT: Tensor, aS: Tensor): Tensor {
  if (aT.ndim !== 2 || aT.shape[1] !== aS.shape[1]) {
    throw new Error(`patchAttentionKL: expected two [B, N] distributions over the same patches, got [${aT.shape.join(', ')}] and [${aS.shape.join(', ')}] (teacher and student must share the patch grid)`);
  }
  return tidy(() => klDiv(aS.clampMin(ATTENTION_FLOOR).log(), aT, 'batchmean'));
}

/** Below this norm a token counts as zero in a cosine similarity (as F.cosine_similarity's eps). */
const COSINE_EPS = 1e-8;

/**
 * Cosine similarities between all pairs of patch tokens: [B, N, N] from block tokens [B, T, D]
 * (prefix tokens dropped). Dimension-free, so teacher and student of different widths compare.
 */
export function patchSimilarityMatrix(tokens: Tensor, numPrefix: number): Tensor {
  return tidy(() => {
    const h = patchTokens(tokens, numPrefix);
    const u = h.div(h.norm(2, -1, true).clampMin(COSINE_EPS));
    return u.matmul(u.transpose(1, 2));
  });
}

/** MSE between the teacher's and the student's patch cosine-similarity matrices (tgan's L_patch). */
export function patchSimilarityMSE(hT: Tensor, hS: Tensor, prefixT: number, prefixS: number): Tensor {
  return tidy(() => {
    const sT = patchSimilarityMatrix(hT, prefixT);
    const sS = patchSimilarityMatrix(hS, prefixS);
    if (sT.shape[1] !== sS.shape[1]) {
      throw new Error(`patchSimilarityMSE: teacher has ${sT.shape[1]} patches, student ${sS.shape[1]}; they must share the patch grid`);
    }
    return mseLoss(sS, sT, 'mean');
  });
}

/**
 * tgan's L_patch (METHODS.md): Σ over matched blocks (t, s) of KL(a_T^t ‖ a_S^s) + MSE of the
 * patch-similarity matrices of h_T^t and h_S^s. Both outputs come from forward(x, { returnAttention:
 * true, returnTokens: true }); `pairs` from matchBlocks. The weights (default 1, 1) let an ablation
 * switch either half off.
 */
export function patchDistillationLoss(
  teacherOut: TokenOutput,
  studentOut: TokenOutput,
  pairs: readonly (readonly [number, number])[],
  weights: { attention?: number; similarity?: number } = {},
): Tensor {
  const attT = needAttentions(teacherOut, 'patchDistillationLoss (teacher)');
  const attS = needAttentions(studentOut, 'patchDistillationLoss (student)');
  const tokT = needTokens(teacherOut, 'patchDistillationLoss (teacher)');
  const tokS = needTokens(studentOut, 'patchDistillationLoss (student)');
  if (pairs.length === 0) throw new Error('patchDistillationLoss: no block pairs (use matchBlocks)');
  for (const [t, s] of pairs) {
    if (t < 0 || t >= attT.length || s < 0 || s >= attS.length) {
      throw new RangeError(`patchDistillationLoss: pair [${t}, ${s}] out of range for depths ${attT.length} (teacher) and ${attS.length} (student)`);
    }
  }
  const wA = weights.attention ?? 1;
  const wS = weights.similarity ?? 1;
  return tidy(() => {
    const terms: Tensor[] = [];
    for (const [t, s] of pairs) {
      if (wA !== 0) {
        const kl = patchAttentionKL(classAttention(attT[t]!, teacherOut.numPrefix), classAttention(attS[s]!, studentOut.numPrefix));
        terms.push(wA === 1 ? kl : kl.mul(wA));
      }
      if (wS !== 0) {
        const mse = patchSimilarityMSE(tokT[t]!, tokS[s]!, teacherOut.numPrefix, studentOut.numPrefix);
        terms.push(wS === 1 ? mse : mse.mul(wS));
      }
    }
    if (terms.length === 0) return tensor(0, { dtype: tokS[0]!.dtype, device: tokS[0]!.device });
    return stack(terms, 0).sum();
  });
}

/**
 * ZSKT's spatial attention map adapted to a ViT (METHODS.md `zskt`; Zagoruyko & Komodakis 2017):
 * m^l = mean over channels of (h^l)² for each patch, L2-normalised per sample → [B, N].
 */
export function spatialAttentionMap(tokens: Tensor, numPrefix: number): Tensor {
  return tidy(() => {
    const m = patchTokens(tokens, numPrefix).square().mean(-1);
    return m.div(m.norm(2, 1, true).clampMin(COSINE_EPS));
  });
}

/**
 * Attention transfer AT_l = ‖m_T − m_S‖₂ per sample, averaged over the batch (METHODS.md `zskt`,
 * the AT paper's eq. 2 with p = 2). ZSKT's code uses instead the mean over patches of the squared
 * difference (`(at(x) − at(y)).pow(2).mean()`), for which its β = 250 was tuned: `{ squared: true }`.
 */
export function attentionTransferLoss(mT: Tensor, mS: Tensor, opts: { squared?: boolean } = {}): Tensor {
  return tidy(() => {
    const d = mT.sub(mS);
    return opts.squared ? d.square().mean() : d.norm(2, 1).mean();
  });
}

// ---------------------------------------------------------------------------------------------
// PSAQ-ViT's patch-similarity prior (Li et al. 2022, §3.2) for model inversion

export interface PatchSimilarityEntropyOptions {
  /**
   * Gaussian kernel bandwidth h: a number, or 'scott' (default) for Scott's rule in one dimension,
   * h = σ̂·M^(−1/5) per image (σ̂ the sample standard deviation of its M similarities, as scipy's
   * gaussian_kde). The rule stays in the graph, so the gradient is that of the estimate as defined.
   */
  bandwidth?: number | 'scott';
  /**
   * Where the density is evaluated. 'self' (default): at the M similarities themselves, H = −(1/M)
   * Σ_k log p̂(s_k) (the resubstitution estimate; cost B·M² with M = N(N−1)/2). A number G: on G
   * evenly spaced points of [−1, 1] (the range of a cosine), H = −∫ p̂ log p̂ by the trapezoidal rule
   * (PSAQ-ViT's code integrates this way on 10 points over the batch's observed range); cost B·M·G.
   */
  samplePoints?: 'self' | number;
  /** Use a random subset of this many pairs (the same for every image) when there are more. */
  maxPairs?: number;
}

/** Scott's rule fails on identical similarities (σ̂ = 0); the bandwidth never goes below this. */
export const MIN_KDE_BANDWIDTH = 1e-3;

const upperPairIndex = new Map<string, Tensor>();
/** Flat indices i·N + j of the pairs i < j of an N × N matrix (cached per N and device). */
function upperPairs(N: number, device: Device): Tensor {
  const key = `${N}@${device}`;
  let idx = upperPairIndex.get(key);
  if (!idx || idx.isDisposed) {
    const flat: number[] = [];
    for (let i = 0; i < N; i++) for (let j = i + 1; j < N; j++) flat.push(i * N + j);
    idx = noGrad(() => tensor(flat, { dtype: 'int64', device }));
    keep(idx); // a cache: it lives as long as the module, outside every scope
    upperPairIndex.set(key, idx);
  }
  return idx;
}

/**
 * The differential entropy of the patch similarities (PSAQ-ViT's prior for one block): for each
 * image, the cosine similarities s of all pairs i < j of patch tokens, a Gaussian kernel density
 * estimate p̂(x) = (1/M) Σ_j φ_h(x − s_j), and H = −E log p̂ (see the options for where it is
 * evaluated). Differentiable with respect to the tokens. Returns the batch mean of H.
 */
export function patchSimilarityEntropy(tokens: Tensor, numPrefix: number, opts: PatchSimilarityEntropyOptions = {}): Tensor {
  const bw = opts.bandwidth ?? 'scott';
  const where = opts.samplePoints ?? 'self';
  if (typeof bw === 'number' && !(bw > 0)) throw new RangeError(`patchSimilarityEntropy: bandwidth must be > 0, got ${bw}`);
  if (typeof where === 'number' && !(Number.isInteger(where) && where >= 2)) {
    throw new RangeError(`patchSimilarityEntropy: samplePoints must be 'self' or an integer grid size ≥ 2, got ${where}`);
  }
  return tidy(() => {
    const sim = patchSimilarityMatrix(tokens, numPrefix);
    const [B, N] = sim.shape as [number, number, number];
    let idx = upperPairs(N, sim.device);
    let M = idx.numel();
    if (opts.maxPairs !== undefined && opts.maxPairs < M) {
      if (!(opts.maxPairs >= 2)) throw new RangeError(`patchSimilarityEntropy: maxPairs must be ≥ 2, got ${opts.maxPairs}`);
      idx = idx.indexSelect(0, randperm(M, { device: sim.device }).narrow(0, 0, opts.maxPairs));
      M = opts.maxPairs;
    }
    if (M < 1) throw new Error(`patchSimilarityEntropy: need at least 2 patch tokens, got ${N}`);
    const s = sim.flatten(1).indexSelect(1, idx); // [B, M]
    let h: Tensor; // [B, 1]
    if (bw === 'scott') {
      if (M < 2) throw new Error("patchSimilarityEntropy: Scott's rule needs at least 2 similarities (3 patches); give a numeric bandwidth");
      h = s.std(1, { correction: 1, keepdim: true }).mul(M ** -0.2).clampMin(MIN_KDE_BANDWIDTH);
    } else {
      h = full([B, 1], bw, { dtype: s.dtype, device: s.device });
    }
    // log p̂(x) = logsumexp_j(−(x − s_j)²/2h²) − log M − log h − ½ log 2π
    const logDensity = (x: Tensor): Tensor => {
      const u = x.unsqueeze(2).sub(s.unsqueeze(1)).div(h.unsqueeze(2)); // [B, P, M]
      return u.square().mul(-0.5).logsumexp(2).sub(h.log()).sub(Math.log(M) + 0.5 * Math.log(2 * Math.PI));
    };
    if (where === 'self') return logDensity(s).mean(1).neg().mean();
    const G = where;
    const grid = linspace(-1, 1, G, { dtype: s.dtype, device: s.device }).unsqueeze(0).expand([B, G]);
    const logp = logDensity(grid);
    const f = logp.exp().mul(logp).neg(); // −p̂ log p̂, 0 where p̂ underflows (log p̂ stays finite)
    const dx = 2 / (G - 1);
    const ends = f.select(1, 0).add(f.select(1, G - 1)).mul(0.5);
    return f.sum(1).sub(ends).mul(dx).mean();
  });
}

/**
 * PSAQ-ViT's patch-similarity prior R_ps = −Σ_l H_l over the given blocks' tokens (METHODS.md
 * `deepinv`): minimising it rewards diverse patch similarities, as in real images.
 */
export function patchSimilarityPrior(tokens: readonly Tensor[], numPrefix: number, opts: PatchSimilarityEntropyOptions = {}): Tensor {
  if (tokens.length === 0) throw new Error('patchSimilarityPrior: no block tokens; call forward(x, { returnTokens: true })');
  return tidy(() => stack(tokens.map((h) => patchSimilarityEntropy(h, numPrefix, opts)), 0).sum().neg());
}

// ---------------------------------------------------------------------------------------------
// DeepInversion's image priors (Yin et al. 2020, eq. 3; Mahendran & Vedaldi 2015)

/**
 * Total variation of images [B, C, H, W] over DeepInversion's four neighbour directions
 * (horizontal, vertical and both diagonals): Σ_directions mean |Δ| ('l1') or mean Δ² ('l2').
 * DeepInversion's code uses the same differences, with Σ mean|Δ| for L1 but the Frobenius norm ‖Δ‖
 * (not normalised by size) for L2, so its α_tv does not transfer to the 'l2' form here.
 */
export function totalVariation(x: Tensor, kind: 'l1' | 'l2' = 'l2'): Tensor {
  if (x.ndim !== 4) throw new Error(`totalVariation: expected images [B, C, H, W], got [${x.shape.join(', ')}]`);
  return tidy(() => {
    const H = x.size(2);
    const W = x.size(3);
    const diffs = [
      x.narrow(3, 0, W - 1).sub(x.narrow(3, 1, W - 1)), // horizontal
      x.narrow(2, 0, H - 1).sub(x.narrow(2, 1, H - 1)), // vertical
      x.narrow(2, 1, H - 1).narrow(3, 0, W - 1).sub(x.narrow(2, 0, H - 1).narrow(3, 1, W - 1)), // anti-diagonal
      x.narrow(2, 0, H - 1).narrow(3, 0, W - 1).sub(x.narrow(2, 1, H - 1).narrow(3, 1, W - 1)), // diagonal
    ];
    const per = diffs.map((d) => (kind === 'l1' ? d.abs().mean() : d.square().mean()));
    return stack(per, 0).sum();
  });
}

/**
 * DeepInversion's ℓ2 image prior (METHODS.md α_l2·‖x‖²), as the per-element mean of x² so that α_l2
 * does not depend on batch or image size (the code uses the Frobenius norm ‖x‖₂).
 */
export function l2Prior(x: Tensor): Tensor {
  return tidy(() => x.square().mean());
}

/**
 * DeepInversion's feature-distribution prior R_feature for one BatchNorm layer: ‖μ(x) − μ_BN‖₂ +
 * ‖σ²(x) − σ²_BN‖₂, with μ, σ² (biased, as DeepInversion's code) over (N, H, W) of the layer's input
 * x [N, C, H, W] and the layer's running statistics — synthetic inputs whose low-level feature
 * statistics match those of the (absent) training data.
 */
export function batchNormStatisticsLoss(x: Tensor, runningMean: Tensor, runningVar: Tensor): Tensor {
  if (x.ndim !== 4 || x.size(1) !== runningMean.size(0)) throw new Error(`batchNormStatisticsLoss: expected [N, ${runningMean.size(0)}, H, W], got [${x.shape.join(', ')}]`);
  return tidy(() => {
    const mean = x.mean([0, 2, 3]);
    const variance = x.var([0, 2, 3], { correction: 0 });
    return mean.sub(runningMean.detach()).square().sum().sqrt().add(variance.sub(runningVar.detach()).square().sum().sqrt());
  });
}

/**
 * Runs `fn` (a forward pass of a network containing `norms`) with input taps on those BatchNorm
 * layers and returns its result with Σ_l batchNormStatisticsLoss over the layers (null when `norms`
 * is empty or none was called).
 */
export function withBatchNormPrior<T>(norms: readonly BatchNorm2d[], fn: () => T): { out: T; prior: Tensor | null } {
  const terms: Tensor[] = [];
  for (const bn of norms) bn.inputTap = (x) => terms.push(batchNormStatisticsLoss(x, bn.runningMean, bn.runningVar));
  try {
    const out = fn();
    return { out, prior: terms.length ? tidy(() => stack(terms, 0).sum()) : null };
  } finally {
    for (const bn of norms) bn.inputTap = null;
  }
}

/**
 * The masked adversarial term of CMI, Fast and NAYER (Fast-Datafree's
 * −(kldiv(s, t, reduction='none').sum(1) · mask).mean()): −(1/B) Σ_i m_i · KL(σ(t_i) ‖ σ(s_i)) with
 * m_i = [argmax s_i = argmax t_i] — the generator seeks samples the student gets right but whose
 * distribution still differs, without pushing it where the two already disagree. Gradients reach both
 * logits (the generator's graph goes through teacher and student).
 */
export function maskedAdversarialKL(teacherLogits: Tensor, studentLogits: Tensor): Tensor {
  return tidy(() => {
    const mask = noGrad(() => studentLogits.argmax(1).eq(teacherLogits.argmax(1)).to(studentLogits.dtype));
    const logP = teacherLogits.logSoftmax(1);
    return logP.exp().mul(logP.sub(studentLogits.logSoftmax(1))).sum(1).mul(mask).mean().neg();
  });
}

// Scaled dot-product attention and torch.nn.MultiheadAttention (same parameter names and layout).
import { dropout, linear } from '../tensor/functional.js';
import { empty, zeros, type Tensor } from '../tensor/tensor.js';
import { xavierUniform_, zeros_ } from './init.js';
import { Linear } from './layers.js';
import { Module } from './module.js';

/**
 * softmax(q kᵀ / √d + mask) v over the last two dims; q: [..., Nq, d], k, v: [..., Nk, d].
 * `mask` is additive (−inf where not allowed) or boolean (true = not allowed), broadcast to the
 * scores. Returns the output and the attention weights (rows sum to 1).
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: { mask?: Tensor | null; dropoutP?: number; training?: boolean } = {},
): { output: Tensor; weights: Tensor } {
  const d = q.size(-1);
  const kt = k.transpose(-2, -1);
  const qs = q.mul(1 / Math.sqrt(d));
  let scores = qs.matmul(kt);
  kt.dispose();
  qs.dispose();
  if (o.mask) {
    const masked = o.mask.dtype === 'bool' ? scores.maskedFill(o.mask, -Infinity) : scores.add(o.mask);
    scores.dispose();
    scores = masked;
  }
  const weights = scores.softmax(-1);
  scores.dispose();
  const attn = o.dropoutP && o.training ? dropout(weights, o.dropoutP, true) : weights;
  const output = attn.matmul(v);
  if (attn !== weights) attn.dispose();
  return { output, weights };
}

export interface MHAForwardOptions {
  /** Return the attention weights (averaged over heads unless averageAttnWeights is false). */
  needWeights?: boolean;
  averageAttnWeights?: boolean;
  /** [Nq, Nk] or [B·H, Nq, Nk]; boolean (true = masked) or additive. */
  attnMask?: Tensor | null;
  /** [B, Nk] boolean, true = padding (ignored key). */
  keyPaddingMask?: Tensor | null;
}

/**
 * torch.nn.MultiheadAttention with batch_first=True: in_proj_weight [3E, E], in_proj_bias [3E],
 * out_proj (Linear E→E). Inputs [B, N, E].
 */
export class MultiheadAttention extends Module {
  inProjWeight: Tensor;
  inProjBias: Tensor | null;
  outProj: Linear;
  readonly headDim: number;

  constructor(readonly embedDim: number, readonly numHeads: number, o: { bias?: boolean; dropout?: number } = {}) {
    super();
    if (embedDim % numHeads !== 0) throw new Error(`MultiheadAttention: embedDim ${embedDim} not divisible by numHeads ${numHeads}`);
    this.headDim = embedDim / numHeads;
    this.dropoutP = o.dropout ?? 0;
    const bias = o.bias ?? true;
    this.inProjWeight = this.registerParameter('in_proj_weight', empty([3 * embedDim, embedDim]));
    this.inProjBias = bias ? this.registerParameter('in_proj_bias', zeros([3 * embedDim])) : null;
    this.outProj = new Linear(embedDim, embedDim, bias);
    xavierUniform_(this.inProjWeight);
    if (this.outProj.bias) zeros_(this.outProj.bias);
  }
  readonly dropoutP: number;

  override namedChildren(): [string, Module][] {
    return [['out_proj', this.outProj]];
  }

  forward(query: Tensor, key: Tensor, value: Tensor, o: MHAForwardOptions = {}): { output: Tensor; weights: Tensor | null } {
    const [B, Nq, E] = query.shape as [number, number, number];
    const Nk = key.size(1);
    const H = this.numHeads;
    const D = this.headDim;
    const [wq, wk, wv] = this.inProjWeight.chunk(3, 0) as [Tensor, Tensor, Tensor];
    const [bq, bk, bv] = this.inProjBias ? (this.inProjBias.chunk(3, 0) as [Tensor, Tensor, Tensor]) : [null, null, null];
    const heads = (x: Tensor, w: Tensor, b: Tensor | null, n: number): Tensor => {
      const p = linear(x, w, b);
      const r = p.view([B, n, H, D]).transpose(1, 2); // [B, H, n, D]
      p.dispose();
      return r;
    };
    const q = heads(query, wq, bq, Nq);
    const k = heads(key, wk, bk, Nk);
    const v = heads(value, wv, bv, Nk);
    for (const t of [wq, wk, wv, bq, bk, bv]) t?.dispose();

    let mask: Tensor | null = null;
    if (o.attnMask) mask = o.attnMask.ndim === 3 ? o.attnMask.view([B, H, Nq, Nk]) : o.attnMask;
    if (o.keyPaddingMask) {
      const kpm = o.keyPaddingMask.view([B, 1, 1, Nk]);
      if (mask === null) mask = kpm;
      else if (mask.dtype === 'bool') mask = mask.logicalOr(kpm);
      else mask = mask.maskedFill(kpm.expand([B, H, Nq, Nk]), -Infinity);
    }
    const { output, weights } = scaledDotProductAttention(q, k, v, { mask, dropoutP: this.dropoutP, training: this.training });
    q.dispose();
    k.dispose();
    v.dispose();
    const merged = output.transpose(1, 2).reshape([B, Nq, E]);
    output.dispose();
    const out = this.outProj.forward(merged);
    merged.dispose();
    if (!o.needWeights) {
      weights.dispose();
      return { output: out, weights: null };
    }
    if (o.averageAttnWeights ?? true) {
      const avg = weights.mean(1);
      weights.dispose();
      return { output: out, weights: avg };
    }
    return { output: out, weights };
  }
}

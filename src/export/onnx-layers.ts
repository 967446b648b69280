// ONNX graphs of the project's modules (shared by the classifier and detector exporters): Conv2d,
// BatchNorm2d, the ViT block (models/vit.ts) and torch.nn.MultiheadAttention (nn/attention.ts), each
// in the same operation order as its libtorch forward pass.
import type { Block } from '../models/vit.js';
import type { BatchNorm2d, Conv2d } from '../nn/layers.js';
import type { MultiheadAttention } from '../nn/attention.js';
import type { Dim, OnnxGraph } from './onnx-graph.js';

/**
 * The graph input 'input' [batch, C, H, W] and, with `fold`, (x − mean) / std in front of it (the
 * graph then takes [0, 1] pixels, as the browser and most deployments have them).
 */
export function imageInput(g: OnnxGraph, [c, h, w]: readonly [number, number, number], n: { mean: readonly number[]; std: readonly number[] }, batch: Dim, fold: boolean): string {
  const x = g.addInput('input', [batch, c, h, w]);
  if (!fold) return x;
  const mean = g.initFloat('normalize.mean', n.mean, [1, c, 1, 1]);
  const std = g.initFloat('normalize.std', n.std, [1, c, 1, 1]);
  return g.op('Div', [g.op('Sub', [x, mean]), std]);
}

export function conv(g: OnnxGraph, x: string, name: string, m: Conv2d): string {
  const o = m.options;
  return g.conv(x, name, m.weight, m.bias, { stride: o.stride ?? 1, padding: (o.padding ?? 0) as number | [number, number], dilation: o.dilation ?? 1, groups: o.groups ?? 1 });
}

export function batchNorm(g: OnnxGraph, x: string, name: string, m: BatchNorm2d): string {
  return g.batchNorm(x, name, { weight: m.weight, bias: m.bias, runningMean: m.runningMean, runningVar: m.runningVar, eps: m.eps, numFeatures: m.numFeatures });
}

/** Patch embedding: Conv (kernel = stride = patch) [B, C, H, W] → [B, D, g, g] → tokens [B, g·g, D]. */
export function patchTokens(g: OnnxGraph, x: string, name: string, proj: Conv2d, grid: number): string {
  const D = proj.outChannels;
  return g.transpose(g.reshape(conv(g, x, name, proj), [0, D, grid * grid]), [0, 2, 1]);
}

/**
 * One pre-norm ViT block (eval: dropout and stochastic depth are the identity) on tokens [B, T, D].
 * Returns the output tokens and the attention weights [B, H, T, T].
 *
 * With `rows` the tokens are rows [B·T, D] instead (the ViT classifier's layout, chosen for ONNX
 * Runtime's per-node cost at batch 1): every Linear is a 2-D MatMul + Add, which ORT fuses into one
 * Gemm; q, k, v come out of one Split (no Gather / Squeeze per tensor) and stay 5-D [1, B, H, T, hd]
 * through the attention products (MatMul broadcasts), so the weights are [1, B, H, T, T]; with one
 * head there is no head axis to move (no Transpose at all) and the weights are [B, T, T]. The same
 * operations on the same values as the [B, T, D] graph: only shapes differ.
 */
export function vitBlock(g: OnnxGraph, blk: Block, h: string, name: string, T: number, o: { rows?: boolean } = {}): { out: string; attn: string } {
  const a = blk.attn;
  const D = a.dim;
  const H = a.heads;
  const hd = a.headDim;
  const n1 = g.layerNorm(h, `${name}.norm1`, blk.norm1.weight, blk.norm1.bias, blk.norm1.eps, D);
  let merged: string;
  let weights: string;
  if (o.rows && H === 1) {
    // one head: no head axis to move. qkv [B·T, 3D] → [B, T, 3D] → Split → q, k, v [B, T, D]
    const qkv = g.reshape(g.linear(n1, `${name}.attn.qkv`, a.qkv.weight, a.qkv.bias), [-1, T, 3 * D]);
    const [q, k, v] = g.node('Split', [qkv, g.constInt64([D, D, D])], { axis: 2 }, { nOut: 3 }) as [string, string, string];
    const r = g.attention(q, k, v, hd ** -0.5, 3);
    weights = r.weights;
    merged = g.reshape(r.out, [-1, D]);
  } else if (o.rows) {
    // qkv: [B·T, 3D] → [B, T, 3, H, hd] → [3, B, H, T, hd] → Split → q, k, v [1, B, H, T, hd]
    const qkv = g.transpose(g.reshape(g.linear(n1, `${name}.attn.qkv`, a.qkv.weight, a.qkv.bias), [-1, T, 3, H, hd]), [2, 0, 3, 1, 4]);
    const [q, k, v] = g.node('Split', [qkv, g.constInt64([1, 1, 1])], { axis: 0 }, { nOut: 3 }) as [string, string, string];
    const r = g.attention(q, k, v, hd ** -0.5, 5);
    weights = r.weights;
    // [1, B, H, T, hd] → [1, B, T, H, hd] → rows [B·T, D]
    merged = g.reshape(g.transpose(r.out, [0, 1, 3, 2, 4]), [-1, D]);
  } else {
    // qkv: [B, T, 3D] → [B, T, 3, H, hd] → [3, B, H, T, hd] → q, k, v
    const qkv = g.transpose(g.reshape(g.linear(n1, `${name}.attn.qkv`, a.qkv.weight, a.qkv.bias), [0, T, 3, H, hd]), [2, 0, 3, 1, 4]);
    const [q, k, v] = [0, 1, 2].map((j) => g.select(qkv, 0, j)) as [string, string, string];
    const r = g.attention(q, k, v, hd ** -0.5);
    weights = r.weights;
    merged = g.reshape(g.transpose(r.out, [0, 2, 1, 3]), [0, T, D]);
  }
  const h1 = g.op('Add', [h, g.linear(merged, `${name}.attn.proj`, a.proj.weight, a.proj.bias)]);
  const n2 = g.layerNorm(h1, `${name}.norm2`, blk.norm2.weight, blk.norm2.bias, blk.norm2.eps, D);
  const mlp = g.linear(g.gelu(g.linear(n2, `${name}.mlp.fc1`, blk.mlp.fc1.weight, blk.mlp.fc1.bias)), `${name}.mlp.fc2`, blk.mlp.fc2.weight, blk.mlp.fc2.bias);
  return { out: g.op('Add', [h1, mlp]), attn: weights };
}

/**
 * torch.nn.MultiheadAttention (batch_first) on query [B, Nq, E], key / value [B, Nk, E], no masks:
 * the packed in_proj split into its q, k, v rows, per-head scaled dot-product attention with scale
 * 1/√d, out_proj. Returns the output and the head-averaged weights [B, Nq, Nk] (needWeights with
 * averageAttnWeights, torch's default).
 */
export function multiheadAttention(g: OnnxGraph, m: MultiheadAttention, name: string, query: string, key: string, value: string, nq: number, nk: number): { out: string; weights: string } {
  const E = m.embedDim;
  const H = m.numHeads;
  const D = m.headDim;
  const heads = (x: string, j: number, n: number, part: string): string => {
    const w = m.inProjWeight.narrow(0, j * E, E);
    const b = m.inProjBias ? m.inProjBias.narrow(0, j * E, E) : null;
    const p = g.linear(x, `${name}.in_proj.${part}`, w, b);
    w.dispose();
    b?.dispose();
    return g.transpose(g.reshape(p, [0, n, H, D]), [0, 2, 1, 3]); // [B, H, n, D]
  };
  const q = heads(query, 0, nq, 'q');
  const k = heads(key, 1, nk, 'k');
  const v = heads(value, 2, nk, 'v');
  const { out, weights } = g.attention(q, k, v, 1 / Math.sqrt(D));
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [0, nq, E]);
  return { out: g.linear(merged, `${name}.out_proj`, m.outProj.weight, m.outProj.bias), weights: g.reduceMean(weights, [1], false) };
}

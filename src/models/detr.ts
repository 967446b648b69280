// DETR-style detector (Carion et al., ECCV 2020) on a ViT encoder, as METHODS.md's detection section:
// patches → ViT blocks (vit.ts's Block) with fixed 2-D sine position embeddings (DETR's
// PositionEmbeddingSine, normalised, scale 2π) added to the patch tokens → a pre-norm transformer
// decoder whose Q learned object queries self-attend, cross-attend to the encoder tokens (the
// position embedding added to the keys, as DETR) and pass an MLP → a shared final norm → per query a
// class head (C + 1, the last = "no object") and a 3-layer box MLP (cx, cy, w, h through a sigmoid).
// Every decoder layer's output goes through the same norm and heads for DETR's auxiliary losses.
import { cat, full, noGrad, rand, stack, tensor, zeros, type Tensor } from '../tensor/tensor.js';
import { MultiheadAttention } from '../nn/attention.js';
import { truncNormal_, zeros_ } from '../nn/init.js';
import { BatchNorm2d, Conv2d, GELU, LayerNorm, Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Block, VIT_DEFAULTS, type ViTConfig } from './vit.js';
import { summarize, type FlopCount, type LayerCost } from './flops.js';

export interface DetrConfig {
  imageSize: number;
  inChannels: number;
  patchSize: number;
  /** Object classes C (the class head has C + 1 outputs). */
  numClasses: number;
  dim: number;
  encoderDepth: number;
  decoderDepth: number;
  heads: number;
  numQueries: number;
  mlpRatio: number;
  layerNormEps: number;
  /**
   * Anchor queries with iterative box refinement (DAB-DETR, Liu et al. ICLR 2022; Deformable DETR's
   * refinement): each query owns a learned anchor box; its positional query is an MLP of the anchor's
   * sine embedding, `query_embed` becomes its learned content query, and every decoder layer predicts
   * a correction in logit space, box = σ(σ⁻¹(anchor) + Δ), that becomes the next layer's anchor
   * (detached). Plain DETR (false) learns its positional queries from scratch and needs hundreds of
   * epochs; measured on the canvases, anchors converge in the minutes 2 cores allow.
   */
  anchors: boolean;
  /**
   * 'patch': ViT's patchify (one p×p stride-p convolution). 'conv': a convolutional stem of log2(p)
   * stride-2 3×3 convolutions (BatchNorm, ReLU) then a 1×1 convolution to the width — "Early
   * convolutions help transformers see better" (Xiao et al., NeurIPS 2021): same token grid, much
   * faster optimisation (DETR itself reads a CNN's features). Measured here: a DETR with the patch
   * stem localises within minutes but stays near chance on the digit classes.
   */
  stem: 'patch' | 'conv';
}

export const DETR_DEFAULTS = { mlpRatio: 4, layerNormEps: 1e-6, anchors: false, stem: 'patch' as 'patch' | 'conv' };

/** Channel widths of the conv stem's stride-2 layers for patch size p = 2^k and width D: D/2^k … D/2. */
export function convStemWidths(patchSize: number, dim: number): number[] {
  const k = Math.round(Math.log2(patchSize));
  if (2 ** k !== patchSize || k < 1) throw new Error(`DETR: the conv stem needs a power-of-two patch size, got ${patchSize}`);
  return Array.from({ length: k }, (_, i) => Math.max(8, Math.round(dim / 2 ** (k - i))));
}

/** The conv stem (without its final 1×1 projection, which is DETR.patchEmbed). */
class ConvStem extends Module {
  convs: Conv2d[];
  norms: BatchNorm2d[];
  constructor(inChannels: number, widths: number[]) {
    super();
    this.convs = widths.map((w, i) => new Conv2d(i === 0 ? inChannels : widths[i - 1]!, w, 3, { stride: 2, padding: 1, bias: false }));
    this.norms = widths.map((w) => new BatchNorm2d(w));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    this.convs.forEach((c, i) => {
      h = this.norms[i]!.forward(c.forward(h)).relu();
    });
    return h;
  }
}

/** Sine embedding of boxes [..., 4] in [0, 1]: per coordinate dim/4 values (sin, cos interleaved) → [..., dim]. */
export function anchorSineEmbedding(anchor: Tensor, dim: number, temperature = 10000): Tensor {
  if (dim % 8 !== 0) throw new Error(`DETR: width ${dim} must be a multiple of 8 for anchor queries`);
  const half = dim / 8;
  const inv = Float32Array.from({ length: half }, (_, i) => 1 / temperature ** ((2 * i) / (dim / 4)));
  const freq = tensor(inv, { dtype: anchor.dtype });
  const a = anchor.mul(2 * Math.PI).unsqueeze(-1).mul(freq); // [..., 4, half]
  return stack([a.sin(), a.cos()], -1).flatten(-3); // [..., 4·half·2] = [..., dim]
}

const inverseSigmoid = (x: Tensor, eps = 1e-5): Tensor => x.clamp(eps, 1 - eps).log().sub(x.rsub(1).clamp(eps, 1 - eps).log());

/** DETR's PositionEmbeddingSine (normalize=True, scale 2π, temperature 10000) for a g×g grid → [g·g, dim]. */
export function sinePositionEmbedding(grid: number, dim: number, temperature = 10000): Float32Array {
  if (dim % 4 !== 0) throw new Error(`DETR: width ${dim} must be a multiple of 4 for the 2-D sine position embedding`);
  const half = dim / 2;
  const out = new Float32Array(grid * grid * dim);
  const eps = 1e-6;
  for (let y = 0; y < grid; y++) {
    for (let x = 0; x < grid; x++) {
      const ey = ((y + 1) / (grid + eps)) * 2 * Math.PI;
      const ex = ((x + 1) / (grid + eps)) * 2 * Math.PI;
      const row = (y * grid + x) * dim;
      for (let i = 0; i < half; i++) {
        const t = temperature ** ((2 * Math.floor(i / 2)) / half);
        // [pos_y (sin, cos interleaved), pos_x (sin, cos interleaved)] as DETR's cat((pos_y, pos_x))
        out[row + i] = i % 2 === 0 ? Math.sin(ey / t) : Math.cos(ey / t);
        out[row + half + i] = i % 2 === 0 ? Math.sin(ex / t) : Math.cos(ex / t);
      }
    }
  }
  return out;
}

class FeedForward extends Module {
  fc1: Linear;
  act = new GELU();
  fc2: Linear;
  constructor(dim: number, hidden: number) {
    super();
    this.fc1 = new Linear(dim, hidden);
    this.fc2 = new Linear(hidden, dim);
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.act.forward(this.fc1.forward(x)));
  }
}

/** DETR's 3-layer box MLP (ReLU between layers). */
class BoxHead extends Module {
  layers: Linear[];
  constructor(dim: number) {
    super();
    this.layers = [new Linear(dim, dim), new Linear(dim, dim), new Linear(dim, 4)];
  }
  forward(x: Tensor): Tensor {
    return this.raw(x).sigmoid();
  }
  /** The box before the sigmoid (a correction in logit space for anchor queries). */
  raw(x: Tensor): Tensor {
    let h = x;
    this.layers.forEach((l, i) => {
      h = l.forward(h);
      if (i < this.layers.length - 1) h = h.relu();
    });
    return h;
  }
}

/** DAB-DETR's ref_point_head: anchor sine embedding → positional query (2-layer MLP). */
class AnchorHead extends Module {
  layers: Linear[];
  constructor(dim: number) {
    super();
    this.layers = [new Linear(dim, dim), new Linear(dim, dim)];
  }
  forward(x: Tensor): Tensor {
    return this.layers[1]!.forward(this.layers[0]!.forward(x).relu());
  }
}

export class DetrDecoderLayer extends Module {
  norm1: LayerNorm;
  selfAttn: MultiheadAttention;
  norm2: LayerNorm;
  crossAttn: MultiheadAttention;
  norm3: LayerNorm;
  mlp: FeedForward;
  constructor(c: DetrConfig) {
    super();
    this.norm1 = new LayerNorm(c.dim, c.layerNormEps);
    this.selfAttn = new MultiheadAttention(c.dim, c.heads);
    this.norm2 = new LayerNorm(c.dim, c.layerNormEps);
    this.crossAttn = new MultiheadAttention(c.dim, c.heads);
    this.norm3 = new LayerNorm(c.dim, c.layerNormEps);
    this.mlp = new FeedForward(c.dim, Math.round(c.dim * c.mlpRatio));
  }
  /** tgt [B, Q, D], memory [B, N, D], queryPos [B, Q, D], memoryPos [B, N, D] → tgt, cross-attention [B, Q, N] (head mean). */
  forward(tgt: Tensor, memory: Tensor, queryPos: Tensor, memoryPos: Tensor): { out: Tensor; cross: Tensor } {
    const n1 = this.norm1.forward(tgt);
    const qk = n1.add(queryPos);
    const h1 = tgt.add(this.selfAttn.forward(qk, qk, n1).output);
    const n2 = this.norm2.forward(h1);
    const { output, weights } = this.crossAttn.forward(n2.add(queryPos), memory.add(memoryPos), memory, { needWeights: true });
    const h2 = h1.add(output);
    const out = h2.add(this.mlp.forward(this.norm3.forward(h2)));
    return { out, cross: weights! };
  }
}

export interface DetrOutput {
  /** [B, Q, C + 1] class logits of the final layer (the last class is "no object"). */
  logits: Tensor;
  /** [B, Q, 4] cxcywh boxes in [0, 1]. */
  boxes: Tensor;
  /** The earlier decoder layers' predictions (training, or when asked), for the auxiliary losses. */
  aux: { logits: Tensor; boxes: Tensor }[];
  /** Each decoder layer's cross-attention [B, Q, N] (mean over heads), when asked. */
  crossAttentions?: Tensor[];
  /** The final decoder layer's normed query features [B, Q, D]. */
  queryFeatures: Tensor;
  /** The encoder's output tokens [B, N, D] (the decoder's memory). */
  encoderTokens: Tensor;
}

export class DETR extends Module {
  readonly config: DetrConfig;
  /** The conv stem ('conv' only); patchEmbed is then its 1×1 projection to the width. */
  stem: ConvStem | null = null;
  patchEmbed: Conv2d;
  blocks: Block[];
  encoderNorm: LayerNorm;
  queryEmbed: Tensor;
  decoder: DetrDecoderLayer[];
  decoderNorm: LayerNorm;
  classHead: Linear;
  boxHead: BoxHead;
  /** Anchor queries only: the anchors' logits [Q, 4] and the positional-query MLP. */
  anchorLogits: Tensor | null = null;
  anchorHead: AnchorHead | null = null;
  readonly gridSize: number;
  private readonly pos: Tensor;

  constructor(config: Partial<DetrConfig> & Omit<DetrConfig, keyof typeof DETR_DEFAULTS>) {
    super();
    const c: DetrConfig = { ...DETR_DEFAULTS, ...config };
    if (c.imageSize % c.patchSize !== 0) throw new Error(`DETR: image size ${c.imageSize} is not a multiple of patch size ${c.patchSize}`);
    if (c.dim % c.heads !== 0) throw new Error(`DETR: width ${c.dim} is not divisible by ${c.heads} heads`);
    this.config = c;
    this.gridSize = c.imageSize / c.patchSize;
    const vitCfg: ViTConfig = { ...VIT_DEFAULTS, imageSize: c.imageSize, inChannels: c.inChannels, patchSize: c.patchSize, numClasses: 0, dim: c.dim, depth: c.encoderDepth, heads: c.heads, mlpRatio: c.mlpRatio, layerNormEps: c.layerNormEps };
    if (c.stem === 'conv') {
      const widths = convStemWidths(c.patchSize, c.dim);
      this.stem = new ConvStem(c.inChannels, widths);
      this.patchEmbed = new Conv2d(widths[widths.length - 1]!, c.dim, 1);
    } else {
      this.patchEmbed = new Conv2d(c.inChannels, c.dim, c.patchSize, { stride: c.patchSize });
    }
    this.blocks = Array.from({ length: c.encoderDepth }, () => new Block(vitCfg, 0));
    this.encoderNorm = new LayerNorm(c.dim, c.layerNormEps);
    this.queryEmbed = this.registerParameter('query_embed', zeros([c.numQueries, c.dim]));
    this.decoder = Array.from({ length: c.decoderDepth }, () => new DetrDecoderLayer(c));
    this.decoderNorm = new LayerNorm(c.dim, c.layerNormEps);
    this.classHead = new Linear(c.dim, c.numClasses + 1);
    this.boxHead = new BoxHead(c.dim);
    if (c.anchors) {
      this.anchorHead = new AnchorHead(c.dim);
      this.anchorLogits = this.registerParameter('anchor_logits', zeros([c.numQueries, 4]));
    }
    this.pos = this.registerBuffer('pos_embed', tensor(sinePositionEmbedding(this.gridSize, c.dim), { shape: [1, this.gridSize ** 2, c.dim] }), false);
    // timm-style init for the transformer (truncated normal 0.02, zero biases); DETR's N(0, 1) queries.
    for (const [, m] of this.namedModules()) {
      if (m instanceof Linear) {
        truncNormal_(m.weight, 0.02);
        if (m.bias) zeros_(m.bias);
      }
    }
    truncNormal_(this.queryEmbed, 1);
    if (this.anchorLogits) {
      // DAB-DETR: centres uniform over the image, sides 0.3 — as logits.
      noGrad(() => {
        const centres = rand([c.numQueries, 2]).clamp(0.05, 0.95);
        const sides = full([c.numQueries, 2], 0.3);
        this.anchorLogits!.copy_(inverseSigmoid(cat([centres, sides], 1)));
      });
      // Content queries start small: the anchor carries the position.
      truncNormal_(this.queryEmbed, 0.02);
    }
  }

  /** [channels, height, width] of one input image. */
  get inputShape(): [number, number, number] {
    return [this.config.inChannels, this.config.imageSize, this.config.imageSize];
  }

  get numClasses(): number {
    return this.config.numClasses;
  }

  /** Encoder tokens [B, N, D] (after the final encoder norm). */
  encode(x: Tensor): Tensor {
    const c = this.config;
    const s = x.shape;
    if (s.length !== 4 || s[1] !== c.inChannels || s[2] !== c.imageSize || s[3] !== c.imageSize) {
      throw new Error(`DETR: expected input [B, ${c.inChannels}, ${c.imageSize}, ${c.imageSize}], got [${s.join(', ')}]`);
    }
    let h = this.patchEmbed.forward(this.stem ? this.stem.forward(x) : x).flatten(2).transpose(1, 2).add(this.pos);
    for (const block of this.blocks) h = block.forward(h).out;
    return this.encoderNorm.forward(h);
  }

  /**
   * Forward pass. Auxiliary predictions of the earlier decoder layers are computed in training mode
   * or with `aux: true`; `returnAttention` returns each decoder layer's cross-attention maps.
   */
  forward(x: Tensor, o: { returnAttention?: boolean; aux?: boolean } = {}): DetrOutput {
    const B = x.size(0);
    const memory = this.encode(x);
    const memoryPos = this.pos.expand([B, this.pos.size(1), this.config.dim]);
    const wantAux = o.aux ?? this.training;
    if (this.anchorLogits && this.anchorHead) return { ...this.forwardAnchors(memory, memoryPos, wantAux, o.returnAttention ?? false), encoderTokens: memory };
    const queryPos = this.queryEmbed.unsqueeze(0).expand([B, this.config.numQueries, this.config.dim]);
    let tgt = zeros([B, this.config.numQueries, this.config.dim], { dtype: x.dtype, device: x.device });
    const aux: { logits: Tensor; boxes: Tensor }[] = [];
    const crossAttentions: Tensor[] = [];
    let normed: Tensor | null = null;
    this.decoder.forEach((layer, i) => {
      const { out, cross } = layer.forward(tgt, memory, queryPos, memoryPos);
      tgt = out;
      if (o.returnAttention) crossAttentions.push(cross);
      const last = i === this.decoder.length - 1;
      if (last || wantAux) {
        const n = this.decoderNorm.forward(tgt);
        if (last) normed = n;
        else aux.push({ logits: this.classHead.forward(n), boxes: this.boxHead.forward(n) });
      }
    });
    const q = normed!;
    const result: DetrOutput = { logits: this.classHead.forward(q), boxes: this.boxHead.forward(q), aux, queryFeatures: q, encoderTokens: memory };
    if (o.returnAttention) result.crossAttentions = crossAttentions;
    return result;
  }

  /** The decoder with anchor queries and iterative refinement (see DetrConfig.anchors). */
  private forwardAnchors(memory: Tensor, memoryPos: Tensor, wantAux: boolean, returnAttention: boolean): Omit<DetrOutput, 'encoderTokens'> {
    const { numQueries: Q, dim: D } = this.config;
    const B = memory.size(0);
    let anchor = this.anchorLogits!.sigmoid().unsqueeze(0).expand([B, Q, 4]);
    let tgt = this.queryEmbed.unsqueeze(0).expand([B, Q, D]);
    const aux: { logits: Tensor; boxes: Tensor }[] = [];
    const crossAttentions: Tensor[] = [];
    let logits: Tensor | null = null;
    let boxes: Tensor | null = null;
    let normed: Tensor | null = null;
    this.decoder.forEach((layer, i) => {
      const queryPos = this.anchorHead!.forward(anchorSineEmbedding(anchor, D));
      const { out, cross } = layer.forward(tgt, memory, queryPos, memoryPos);
      tgt = out;
      if (returnAttention) crossAttentions.push(cross);
      const n = this.decoderNorm.forward(tgt);
      const box = inverseSigmoid(anchor).add(this.boxHead.raw(n)).sigmoid();
      const last = i === this.decoder.length - 1;
      if (last) {
        normed = n;
        boxes = box;
        logits = this.classHead.forward(n);
      } else if (wantAux) aux.push({ logits: this.classHead.forward(n), boxes: box });
      anchor = box.detach();
    });
    const result: Omit<DetrOutput, 'encoderTokens'> = { logits: logits!, boxes: boxes!, aux, queryFeatures: normed! };
    if (returnAttention) result.crossAttentions = crossAttentions;
    return result;
  }
}

/** Analytic cost of one image through DETR at inference (final-layer heads only), flops.ts's conventions. */
export function detrCosts(config: Partial<DetrConfig> & Omit<DetrConfig, keyof typeof DETR_DEFAULTS>): LayerCost[] {
  const c: DetrConfig = { ...DETR_DEFAULTS, ...config };
  const D = c.dim;
  const N = (c.imageSize / c.patchSize) ** 2;
  const Q = c.numQueries;
  const hidden = Math.round(D * c.mlpRatio);
  const lin = (name: string, tokens: number, fin: number, fout: number): LayerCost => ({ name, kind: 'linear', macs: tokens * fin * fout, params: fin * fout + fout });
  const norm = (name: string): LayerCost => ({ name, kind: 'norm', macs: 0, params: 2 * D });
  const out: LayerCost[] = [];
  if (c.stem === 'conv') {
    const widths = convStemWidths(c.patchSize, D);
    let size = c.imageSize;
    let cin = c.inChannels;
    widths.forEach((w, i) => {
      size = Math.floor((size + 2 - 3) / 2) + 1;
      out.push({ name: `stem.convs.${i}`, kind: 'conv', macs: w * size * size * cin * 9, params: w * cin * 9 }, { name: `stem.norms.${i}`, kind: 'norm', macs: 0, params: 2 * w });
      cin = w;
    });
    out.push({ name: 'patch_embed', kind: 'conv', macs: D * N * cin, params: D * cin + D });
  } else {
    out.push({ name: 'patch_embed', kind: 'conv', macs: D * N * c.inChannels * c.patchSize ** 2, params: D * c.inChannels * c.patchSize ** 2 + D });
  }
  for (let i = 0; i < c.encoderDepth; i++) {
    const b = `blocks.${i}`;
    out.push(norm(`${b}.norm1`), lin(`${b}.attn.qkv`, N, D, 3 * D));
    out.push({ name: `${b}.attn.qk`, kind: 'matmul', macs: N * N * D, params: 0 }, { name: `${b}.attn.av`, kind: 'matmul', macs: N * N * D, params: 0 });
    out.push(lin(`${b}.attn.proj`, N, D, D), norm(`${b}.norm2`), lin(`${b}.mlp.fc1`, N, D, hidden), lin(`${b}.mlp.fc2`, N, hidden, D));
  }
  out.push(norm('encoder_norm'), { name: 'query_embed', kind: 'embedding', macs: 0, params: Q * D });
  for (let i = 0; i < c.decoderDepth; i++) {
    const b = `decoder.${i}`;
    out.push(norm(`${b}.norm1`), { name: `${b}.self_attn.in_proj`, kind: 'linear', macs: Q * D * 3 * D, params: 3 * D * D + 3 * D });
    out.push({ name: `${b}.self_attn.qk`, kind: 'matmul', macs: Q * Q * D, params: 0 }, { name: `${b}.self_attn.av`, kind: 'matmul', macs: Q * Q * D, params: 0 });
    out.push(lin(`${b}.self_attn.out_proj`, Q, D, D), norm(`${b}.norm2`));
    out.push({ name: `${b}.cross_attn.in_proj`, kind: 'linear', macs: Q * D * D + 2 * N * D * D, params: 3 * D * D + 3 * D });
    out.push({ name: `${b}.cross_attn.qk`, kind: 'matmul', macs: Q * N * D, params: 0 }, { name: `${b}.cross_attn.av`, kind: 'matmul', macs: Q * N * D, params: 0 });
    out.push(lin(`${b}.cross_attn.out_proj`, Q, D, D), norm(`${b}.norm3`), lin(`${b}.mlp.fc1`, Q, D, hidden), lin(`${b}.mlp.fc2`, Q, hidden, D));
  }
  out.push(norm('decoder_norm'), lin('class_head', Q, D, c.numClasses + 1));
  // Anchor queries run the box head (and the positional MLP) at every decoder layer.
  const boxLayers = c.anchors ? c.decoderDepth : 1;
  out.push(lin('box_head.layers.0', Q * boxLayers, D, D), lin('box_head.layers.1', Q * boxLayers, D, D), lin('box_head.layers.2', Q * boxLayers, D, 4));
  if (c.anchors) {
    out.push({ name: 'anchor_logits', kind: 'embedding', macs: 0, params: Q * 4 });
    out.push(lin('anchor_head.layers.0', Q * c.decoderDepth, D, D), lin('anchor_head.layers.1', Q * c.decoderDepth, D, D));
  }
  return out;
}

export type DetrPresetConfig = Partial<DetrConfig> & Omit<DetrConfig, keyof typeof DETR_DEFAULTS>;

/**
 * Detector presets. Sized for 2-core CPU training on 64×64 canvases (8×8 tokens, up to 4 objects):
 * 12 queries (3× the most objects, DETR's ratio is ~3–5×). Anchor queries and the conv stem because
 * plain DETR (anchors false, stem 'patch' — still available as overrides) did not get past chance on
 * the digit classes in the epochs 2 cores allow (README, detection).
 */
export const DETR_PRESETS: Readonly<Record<string, { description: string; config: DetrPresetConfig }>> = {
  'detr-teacher-64': {
    description: 'DETR teacher for 64×64 grey canvases: conv stem to an 8×8 token grid, ViT encoder (width 128, depth 4, 4 heads), 3 decoder layers, 12 anchor queries',
    config: { imageSize: 64, inChannels: 1, patchSize: 8, numClasses: 10, dim: 128, encoderDepth: 4, decoderDepth: 3, heads: 4, numQueries: 12, mlpRatio: 2, anchors: true, stem: 'conv' },
  },
  'detr-student-64': {
    description: 'DETR student for 64×64 grey canvases: conv stem to an 8×8 token grid, ViT encoder (width 64, depth 3, 2 heads), 2 decoder layers, 12 anchor queries',
    config: { imageSize: 64, inChannels: 1, patchSize: 8, numClasses: 10, dim: 64, encoderDepth: 3, decoderDepth: 2, heads: 2, numQueries: 12, mlpRatio: 2, anchors: true, stem: 'conv' },
  },
};

export function isDetectorPreset(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(DETR_PRESETS, name);
}

const DETR_KEYS = new Set(['imageSize', 'inChannels', 'patchSize', 'numClasses', 'dim', 'encoderDepth', 'decoderDepth', 'heads', 'numQueries', 'mlpRatio', 'layerNormEps', 'anchors', 'stem']);

/** A detector preset's config with overrides (unknown keys are an error). */
export function detectorConfig(name: string, overrides: Partial<DetrConfig> = {}): DetrPresetConfig {
  if (!isDetectorPreset(name)) throw new Error(`unknown detector preset '${name}'; available: ${Object.keys(DETR_PRESETS).join(', ')}`);
  const bad = Object.keys(overrides).filter((k) => !DETR_KEYS.has(k));
  if (bad.length > 0) throw new Error(`detector preset '${name}' has no option ${bad.join(', ')}; its options: ${[...DETR_KEYS].join(', ')}`);
  const set = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return { ...DETR_PRESETS[name]!.config, ...set } as DetrPresetConfig;
}

export function createDetector(name: string, overrides: Partial<DetrConfig> = {}): DETR {
  return new DETR(detectorConfig(name, overrides));
}

/** Params and FLOPs of one image (inference) of a detector preset, without building it. */
export function describeDetector(name: string, overrides: Partial<DetrConfig> = {}): FlopCount & { name: string; description: string } {
  return { name, description: DETR_PRESETS[name]?.description ?? '', ...summarize(detrCosts(detectorConfig(name, overrides))) };
}

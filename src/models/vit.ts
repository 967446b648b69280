// Vision Transformer / DeiT (Dosovitskiy et al. 2021; Touvron et al. 2021), timm's layout and names:
// patch_embed.proj, cls_token, dist_token, pos_embed, blocks.N.{norm1, attn.qkv, attn.proj, norm2,
// mlp.fc1, mlp.fc2}, norm, head, head_dist — so timm checkpoints map key for key.
import { dropout as dropoutFn } from '../tensor/functional.js';
import { cat, rand, zeros, type Tensor } from '../tensor/tensor.js';
import { truncNormal_, zeros_ } from '../nn/init.js';
import { Conv2d, GELU, Identity, LayerNorm, Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';

export interface ViTConfig {
  imageSize: number;
  inChannels: number;
  patchSize: number;
  numClasses: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  qkvBias: boolean;
  /** DeiT's distillation token with its own head; logits are averaged at inference as DeiT does. */
  distToken: boolean;
  /** Stochastic depth rate of the last block (linearly increasing from 0, as timm). */
  dropPath: number;
  /** Dropout after position embedding, in the MLP and after the attention projection. */
  dropout: number;
  attnDropout: number;
  /** LayerNorm epsilon; timm's ViTs use 1e-6. */
  layerNormEps: number;
}

export const VIT_DEFAULTS: Omit<ViTConfig, 'imageSize' | 'inChannels' | 'patchSize' | 'numClasses' | 'dim' | 'depth' | 'heads'> = {
  mlpRatio: 4,
  qkvBias: true,
  distToken: false,
  dropPath: 0,
  dropout: 0,
  attnDropout: 0,
  layerNormEps: 1e-6,
};

/** Dropout that is the identity (no copy, no extra graph node) when it would do nothing. */
function dropout(x: Tensor, p: number, training: boolean): Tensor {
  return p > 0 && training ? dropoutFn(x, p, true) : x;
}

/** Per-sample stochastic depth (Huang et al. 2016): drop the residual branch, rescale survivors. */
export function dropPath(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x;
  const keepProb = 1 - p;
  const mask = rand([x.size(0), ...Array<number>(x.ndim - 1).fill(1)], { device: x.device }).lt(keepProb).to(x.dtype).div(keepProb);
  return x.mul(mask);
}

class PatchEmbed extends Module {
  proj: Conv2d;
  readonly gridSize: number;
  constructor(imageSize: number, patchSize: number, inChannels: number, dim: number) {
    super();
    if (imageSize % patchSize !== 0) throw new Error(`ViT: image size ${imageSize} is not a multiple of patch size ${patchSize}`);
    this.gridSize = imageSize / patchSize;
    this.proj = new Conv2d(inChannels, dim, patchSize, { stride: patchSize });
  }
  /** [B, C, H, W] → [B, N, dim] */
  forward(x: Tensor): Tensor {
    return this.proj.forward(x).flatten(2).transpose(1, 2);
  }
}

export class Attention extends Module {
  qkv: Linear;
  proj: Linear;
  readonly headDim: number;
  constructor(readonly dim: number, readonly heads: number, qkvBias: boolean, readonly attnDrop: number, readonly projDrop: number) {
    super();
    if (dim % heads !== 0) throw new Error(`ViT: width ${dim} is not divisible by ${heads} heads`);
    this.headDim = dim / heads;
    this.qkv = new Linear(dim, 3 * dim, qkvBias);
    this.proj = new Linear(dim, dim);
  }
  /** Returns the output and the attention weights [B, heads, N, N]. */
  forward(x: Tensor): { out: Tensor; attn: Tensor } {
    const [B, N, C] = x.shape as [number, number, number];
    const [q, k, v] = this.qkv.forward(x).reshape([B, N, 3, this.heads, this.headDim]).permute([2, 0, 3, 1, 4]).unbind(0) as [Tensor, Tensor, Tensor];
    const attn = q.mul(this.headDim ** -0.5).matmul(k.transpose(-2, -1)).softmax(-1);
    const a = this.attnDrop > 0 ? dropout(attn, this.attnDrop, this.training) : attn;
    const out = dropout(this.proj.forward(a.matmul(v).transpose(1, 2).reshape([B, N, C])), this.projDrop, this.training);
    return { out, attn };
  }
}

class Mlp extends Module {
  fc1: Linear;
  act = new GELU();
  fc2: Linear;
  constructor(dim: number, hidden: number, readonly drop: number) {
    super();
    this.fc1 = new Linear(dim, hidden);
    this.fc2 = new Linear(hidden, dim);
  }
  forward(x: Tensor): Tensor {
    const h = dropout(this.act.forward(this.fc1.forward(x)), this.drop, this.training);
    return dropout(this.fc2.forward(h), this.drop, this.training);
  }
}

export class Block extends Module {
  norm1: LayerNorm;
  attn: Attention;
  norm2: LayerNorm;
  mlp: Mlp;
  constructor(c: ViTConfig, readonly dropPathRate: number) {
    super();
    this.norm1 = new LayerNorm(c.dim, c.layerNormEps);
    this.attn = new Attention(c.dim, c.heads, c.qkvBias, c.attnDropout, c.dropout);
    this.norm2 = new LayerNorm(c.dim, c.layerNormEps);
    this.mlp = new Mlp(c.dim, Math.round(c.dim * c.mlpRatio), c.dropout);
  }
  forward(x: Tensor): { out: Tensor; attn: Tensor } {
    const { out: a, attn } = this.attn.forward(this.norm1.forward(x));
    const h = x.add(dropPath(a, this.dropPathRate, this.training));
    const out = h.add(dropPath(this.mlp.forward(this.norm2.forward(h)), this.dropPathRate, this.training));
    return { out, attn };
  }
}

export interface ViTOutput {
  /** Class logits [B, classes] (with a distillation token: the mean of both heads at eval, the class head in training). */
  logits: Tensor;
  /** The distillation head's logits [B, classes], when the model has a distillation token. */
  distLogits?: Tensor;
  /** Final-normed class token, the pre-head feature [B, dim]. */
  feature: Tensor;
  /** Each block's attention weights [B, heads, T, T] (T = prefix tokens + patches), if requested. */
  attentions?: Tensor[];
  /** Each block's output tokens [B, T, dim], if requested. */
  tokens?: Tensor[];
  /** Number of prefix tokens (class, distillation) before the patch tokens. */
  numPrefix: number;
}

export class VisionTransformer extends Module {
  readonly config: ViTConfig;
  patchEmbed: PatchEmbed;
  clsToken: Tensor;
  distToken: Tensor | null;
  posEmbed: Tensor;
  blocks: Block[];
  norm: LayerNorm;
  head: Linear | Identity;
  headDist: Linear | null;

  constructor(config: Partial<ViTConfig> & Pick<ViTConfig, 'imageSize' | 'inChannels' | 'patchSize' | 'numClasses' | 'dim' | 'depth' | 'heads'>) {
    super();
    const c: ViTConfig = { ...VIT_DEFAULTS, ...config };
    this.config = c;
    this.patchEmbed = new PatchEmbed(c.imageSize, c.patchSize, c.inChannels, c.dim);
    const numPatches = this.patchEmbed.gridSize ** 2;
    const prefix = c.distToken ? 2 : 1;
    this.clsToken = this.registerParameter('cls_token', zeros([1, 1, c.dim]));
    this.distToken = c.distToken ? this.registerParameter('dist_token', zeros([1, 1, c.dim])) : null;
    this.posEmbed = this.registerParameter('pos_embed', zeros([1, numPatches + prefix, c.dim]));
    this.blocks = Array.from({ length: c.depth }, (_, i) => new Block(c, c.depth > 1 ? (c.dropPath * i) / (c.depth - 1) : c.dropPath));
    this.norm = new LayerNorm(c.dim, c.layerNormEps);
    this.head = c.numClasses > 0 ? new Linear(c.dim, c.numClasses) : new Identity();
    this.headDist = c.distToken && c.numClasses > 0 ? new Linear(c.dim, c.numClasses) : null;
    this.initWeights();
  }

  get numPrefixTokens(): number {
    return this.distToken ? 2 : 1;
  }

  /** [channels, height, width] of one input image (the Classifier interface of models/types.ts). */
  get inputShape(): [number, number, number] {
    return [this.config.inChannels, this.config.imageSize, this.config.imageSize];
  }

  get numClasses(): number {
    return this.config.numClasses;
  }

  /** timm's initialisation: truncated normal (std 0.02) for embeddings and Linear weights, zero biases. */
  private initWeights(): void {
    truncNormal_(this.posEmbed, 0.02);
    truncNormal_(this.clsToken, 0.02);
    if (this.distToken) truncNormal_(this.distToken, 0.02);
    for (const [, m] of this.namedModules()) {
      if (m instanceof Linear) {
        truncNormal_(m.weight, 0.02);
        if (m.bias) zeros_(m.bias);
      }
    }
  }

  /**
   * Forward pass. `returnAttention` / `returnTokens` collect every block's attention weights and
   * output tokens (the distillation losses of METHODS.md need them).
   */
  forward(x: Tensor, o: { returnAttention?: boolean; returnTokens?: boolean } = {}): ViTOutput {
    const c = this.config;
    const s = x.shape;
    if (s.length !== 4 || s[1] !== c.inChannels || s[2] !== c.imageSize || s[3] !== c.imageSize) {
      throw new Error(`ViT: expected input [B, ${c.inChannels}, ${c.imageSize}, ${c.imageSize}], got [${s.join(', ')}]`);
    }
    const B = s[0]!;
    const patches = this.patchEmbed.forward(x);
    const prefix = [this.clsToken.expand([B, 1, c.dim])];
    if (this.distToken) prefix.push(this.distToken.expand([B, 1, c.dim]));
    let h = dropout(cat([...prefix, patches], 1).add(this.posEmbed), c.dropout, this.training);
    const attentions: Tensor[] = [];
    const tokens: Tensor[] = [];
    for (const block of this.blocks) {
      const { out, attn } = block.forward(h);
      h = out;
      if (o.returnAttention) attentions.push(attn);
      if (o.returnTokens) tokens.push(out);
    }
    const normed = this.norm.forward(h);
    const feature = normed.select(1, 0);
    const logits = this.head.forward(feature);
    const result: ViTOutput = { logits, feature, numPrefix: this.numPrefixTokens };
    if (this.headDist) {
      const distLogits = this.headDist.forward(normed.select(1, 1));
      result.distLogits = distLogits;
      // DeiT: the two heads are averaged at inference; in training each is supervised separately.
      if (!this.training) result.logits = logits.add(distLogits).div(2);
    }
    if (o.returnAttention) result.attentions = attentions;
    if (o.returnTokens) result.tokens = tokens;
    return result;
  }
}

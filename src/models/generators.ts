// Generators of synthetic images for data-free distillation: DAFL's / DFAD's DCGAN-style convolutional
// generator, and the transformer-augmented generator of `tgan` (METHODS.md). Both end in tanh and an
// affine map into the teacher's normalised input space, so their images feed the teacher directly.
import { interpolate } from '../tensor/functional.js';
import { randn, tensor, zeros, type Tensor } from '../tensor/tensor.js';
import { truncNormal_, zeros_ } from '../nn/init.js';
import { BatchNorm2d, Conv2d, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Block, VIT_DEFAULTS, type ViTConfig } from './vit.js';

/** What the distillation methods need of any generator. */
export interface ImageGenerator extends Module {
  readonly latentDim: number;
  /** [C, H, W] of the images it makes. */
  readonly outputShape: [number, number, number];
  /** Images [B, C, H, W] in the teacher's normalised space. */
  forward(z: Tensor, labels?: Tensor): Tensor;
  /** Latent codes z ~ N(0, I): [n, latentDim]. */
  latent(n: number): Tensor;
}

/** The teacher's per-channel input normalisation (pixels in [0, 1] → (x − mean)/std). */
export interface Normalisation {
  mean: readonly number[];
  std: readonly number[];
}

/**
 * Registers mean/std as non-persistent buffers [1, C, 1, 1] (they follow .to(device) but are not
 * weights) and returns the map tanh ∈ [−1, 1] → pixel (t + 1)/2 ∈ [0, 1] → (pixel − mean)/std.
 */
class PixelAffine extends Module {
  readonly mean: Tensor;
  readonly std: Tensor;
  constructor(channels: number, n: Normalisation) {
    super();
    if (n.mean.length !== channels || n.std.length !== channels) {
      throw new Error(`generator: ${channels} channels but ${n.mean.length} means / ${n.std.length} stds`);
    }
    if (n.std.some((s) => !(s > 0))) throw new RangeError(`generator: every std must be > 0, got [${n.std.join(', ')}]`);
    this.mean = this.registerBuffer('mean', tensor([...n.mean], { shape: [1, channels, 1, 1] }), false);
    this.std = this.registerBuffer('std', tensor([...n.std], { shape: [1, channels, 1, 1] }), false);
  }
  forward(t: Tensor): Tensor {
    return t.add(1).mul(0.5).sub(this.mean).div(this.std);
  }
}

// ---------------------------------------------------------------------------------------------

export interface DCGANGeneratorConfig extends Normalisation {
  latentDim: number;
  /** Side of the square output; divisible by 4 (two ×2 upsamplings from imageSize/4). */
  imageSize: number;
  channels: number;
  /** DAFL's 64: the first feature map has 2·base channels (DAFL's 128). */
  baseChannels?: number;
  /**
   * Epsilon of the two BatchNorms after the convolutions. DAFL's (and PyTorch-GAN's) code writes
   * nn.BatchNorm2d(c, 0.8), which sets eps = 0.8; the published results used it, so it is the default.
   */
  bnEps?: number;
}

/**
 * DAFL's generator (Chen et al. 2019, code `Generator`; DFAD's is the same shape):
 * l1 = Linear(latent → 2b·s₀²), view [B, 2b, s₀, s₀] (s₀ = size/4), BN, ×2 upsample, conv3×3 2b→2b,
 * BN, LeakyReLU 0.2, ×2 upsample, conv3×3 2b→b, BN, LeakyReLU 0.2, conv3×3 b→C, tanh, then the affine
 * into the teacher's normalised space (instead of DAFL's final affine-free BatchNorm).
 */
export class DCGANGenerator extends Module implements ImageGenerator {
  readonly config: Required<DCGANGeneratorConfig>;
  readonly latentDim: number;
  readonly initSize: number;
  l1: Linear;
  bn0: BatchNorm2d;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  affine: PixelAffine;

  constructor(config: DCGANGeneratorConfig) {
    super();
    const c: Required<DCGANGeneratorConfig> = { baseChannels: 64, bnEps: 0.8, ...config };
    if (!Number.isInteger(c.imageSize) || c.imageSize % 4 !== 0 || c.imageSize < 4) {
      throw new Error(`DCGANGenerator: imageSize must be a positive multiple of 4 (two ×2 upsamplings), got ${c.imageSize}`);
    }
    this.config = c;
    this.latentDim = c.latentDim;
    this.initSize = c.imageSize / 4;
    const b2 = 2 * c.baseChannels;
    this.l1 = new Linear(c.latentDim, b2 * this.initSize ** 2);
    this.bn0 = new BatchNorm2d(b2);
    this.conv1 = new Conv2d(b2, b2, 3, { padding: 1 });
    this.bn1 = new BatchNorm2d(b2, c.bnEps);
    this.conv2 = new Conv2d(b2, c.baseChannels, 3, { padding: 1 });
    this.bn2 = new BatchNorm2d(c.baseChannels, c.bnEps);
    this.conv3 = new Conv2d(c.baseChannels, c.channels, 3, { padding: 1 });
    this.affine = new PixelAffine(c.channels, c);
  }

  get outputShape(): [number, number, number] {
    return [this.config.channels, this.config.imageSize, this.config.imageSize];
  }

  latent(n: number): Tensor {
    return randn([n, this.latentDim], { device: this.l1.weight.device, dtype: this.l1.weight.dtype });
  }

  forward(z: Tensor): Tensor {
    if (z.ndim !== 2 || z.size(1) !== this.latentDim) {
      throw new Error(`DCGANGenerator: expected latents [B, ${this.latentDim}], got [${z.shape.join(', ')}]`);
    }
    const s0 = this.initSize;
    let h = this.l1.forward(z).view([z.size(0), 2 * this.config.baseChannels, s0, s0]);
    h = this.bn0.forward(h);
    h = interpolate(h, { scaleFactor: 2 });
    h = this.bn1.forward(this.conv1.forward(h)).leakyRelu(0.2);
    h = interpolate(h, { scaleFactor: 2 });
    h = this.bn2.forward(this.conv2.forward(h)).leakyRelu(0.2);
    return this.affine.forward(this.conv3.forward(h).tanh());
  }
}

// ---------------------------------------------------------------------------------------------
// Patches: the ViT's patchification and its exact inverse

/**
 * Images [B, C, H, W] → patch vectors [B, N, C·p·p], patches in row-major grid order (the ViT's
 * token order) and each vector ordered (c, row, col) as a Conv2d weight [dim, C, p, p]: so the
 * ViT's patch embedding equals patchify(x) · W.reshape(dim, C·p·p)ᵀ + b.
 */
export function patchify(x: Tensor, patchSize: number): Tensor {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const p = patchSize;
  if (H % p !== 0 || W % p !== 0) throw new Error(`patchify: image ${H}×${W} is not a multiple of patch size ${p}`);
  const gh = H / p;
  const gw = W / p;
  return x.reshape([B, C, gh, p, gw, p]).permute([0, 2, 4, 1, 3, 5]).reshape([B, gh * gw, C * p * p]);
}

/** The exact inverse of patchify: [B, N, C·p·p] → [B, C, H, W] for a square grid of N = (H/p)² patches. */
export function unpatchify(patches: Tensor, patchSize: number, channels: number): Tensor {
  const [B, N, D] = patches.shape as [number, number, number];
  const p = patchSize;
  const g = Math.round(Math.sqrt(N));
  if (g * g !== N || D !== channels * p * p) {
    throw new Error(`unpatchify: expected [B, g², ${channels}·${p}·${p}], got [${patches.shape.join(', ')}]`);
  }
  return patches.reshape([B, g, g, channels, p, p]).permute([0, 3, 1, 4, 2, 5]).reshape([B, channels, g * p, g * p]);
}

// ---------------------------------------------------------------------------------------------

export interface TransformerGeneratorConfig extends Normalisation {
  latentDim: number;
  imageSize: number;
  channels: number;
  patchSize: number;
  /** Token width d_g. */
  dim: number;
  depth: number;
  heads: number;
  mlpRatio?: number;
  /** Class-conditional when set: a learned label embedding is added to every token. */
  numClasses?: number;
  /**
   * Std of the label embedding's initial values (default 0.02, timm's). The latent's share of a token
   * starts ~0.3 (Linear std 0.02 of a 64-d N(0, 1) latent): at 0.02 the label is a 15× smaller nudge,
   * and the detection layout generator learnt to ignore it (the teacher read the requested class on
   * 10% of its objects: chance); see DETECT_TGAN_DEFAULTS.labelStd.
   */
  labelInitStd?: number;
  /**
   * 0: the linear unpatchify head writes pixels directly (METHODS.md's reading). > 0: it writes this
   * many feature channels per pixel, refined by BN → LeakyReLU → 3×3 conv → LeakyReLU → 3×3 conv to
   * the image channels, so neighbouring patches are blended (no seams at patch borders).
   */
  refineChannels?: number;
}

/**
 * tgan's transformer-augmented generator (METHODS.md): z → Linear(latent → N·d) as N patch tokens,
 * + learned position embeddings (+ a label embedding), `depth` ViT blocks with self-attention across
 * patches (so distant regions are generated coherently), LayerNorm, Linear(d → p²·C) per token,
 * unpatchify to [B, C, H, W], tanh, then the affine into the teacher's normalised space.
 * Initialised as timm's ViT: truncated normal (std .02) for linears and embeddings, zero biases.
 */
export class TransformerGenerator extends Module implements ImageGenerator {
  readonly config: Required<Omit<TransformerGeneratorConfig, 'numClasses' | 'labelInitStd'>> & { numClasses?: number; labelInitStd?: number };
  readonly latentDim: number;
  readonly numPatches: number;
  toTokens: Linear;
  posEmbed: Tensor;
  labelEmbed: Embedding | null;
  blocks: Block[];
  norm: LayerNorm;
  toPixels: Linear;
  refineNorm: BatchNorm2d | null = null;
  refine1: Conv2d | null = null;
  refine2: Conv2d | null = null;
  affine: PixelAffine;

  constructor(config: TransformerGeneratorConfig) {
    super();
    const c = { mlpRatio: 2, refineChannels: 0, ...config };
    if (c.imageSize % c.patchSize !== 0) throw new Error(`TransformerGenerator: image size ${c.imageSize} is not a multiple of patch size ${c.patchSize}`);
    if (c.numClasses !== undefined && !(Number.isInteger(c.numClasses) && c.numClasses > 0)) {
      throw new RangeError(`TransformerGenerator: numClasses must be a positive integer, got ${c.numClasses}`);
    }
    this.config = c;
    this.latentDim = c.latentDim;
    this.numPatches = (c.imageSize / c.patchSize) ** 2;
    const vitLike: ViTConfig = {
      ...VIT_DEFAULTS,
      imageSize: c.imageSize,
      inChannels: c.channels,
      patchSize: c.patchSize,
      numClasses: 0,
      dim: c.dim,
      depth: c.depth,
      heads: c.heads,
      mlpRatio: c.mlpRatio,
    };
    this.toTokens = new Linear(c.latentDim, this.numPatches * c.dim);
    this.posEmbed = this.registerParameter('pos_embed', zeros([1, this.numPatches, c.dim]));
    this.labelEmbed = c.numClasses !== undefined ? new Embedding(c.numClasses, c.dim) : null;
    this.blocks = Array.from({ length: c.depth }, () => new Block(vitLike, 0));
    this.norm = new LayerNorm(c.dim, vitLike.layerNormEps);
    const outChannels = c.refineChannels > 0 ? c.refineChannels : c.channels;
    this.toPixels = new Linear(c.dim, c.patchSize * c.patchSize * outChannels);
    if (c.refineChannels > 0) {
      this.refineNorm = new BatchNorm2d(c.refineChannels);
      this.refine1 = new Conv2d(c.refineChannels, c.refineChannels, 3, { padding: 1 });
      this.refine2 = new Conv2d(c.refineChannels, c.channels, 3, { padding: 1 });
    }
    this.affine = new PixelAffine(c.channels, c);
    truncNormal_(this.posEmbed, 0.02);
    if (this.labelEmbed) {
      // timm's trunc_normal_(std 0.02) cuts at ±2 (no cut in effect); a set std is cut at ±2σ.
      if (c.labelInitStd === undefined) truncNormal_(this.labelEmbed.weight, 0.02);
      else truncNormal_(this.labelEmbed.weight, c.labelInitStd, 0, -2 * c.labelInitStd, 2 * c.labelInitStd);
    }
    for (const [, m] of this.namedModules()) {
      if (m instanceof Linear) {
        truncNormal_(m.weight, 0.02);
        if (m.bias) zeros_(m.bias);
      }
    }
  }

  get outputShape(): [number, number, number] {
    return [this.config.channels, this.config.imageSize, this.config.imageSize];
  }

  get conditional(): boolean {
    return this.labelEmbed !== null;
  }

  latent(n: number): Tensor {
    return randn([n, this.latentDim], { device: this.toTokens.weight.device, dtype: this.toTokens.weight.dtype });
  }

  /** z: [B, latentDim]; labels: int64 [B], required exactly when the generator is class-conditional. */
  forward(z: Tensor, labels?: Tensor): Tensor {
    const c = this.config;
    if (z.ndim !== 2 || z.size(1) !== this.latentDim) {
      throw new Error(`TransformerGenerator: expected latents [B, ${this.latentDim}], got [${z.shape.join(', ')}]`);
    }
    const B = z.size(0);
    let h = this.toTokens.forward(z).view([B, this.numPatches, c.dim]).add(this.posEmbed);
    if (this.labelEmbed) {
      if (!labels) throw new Error('TransformerGenerator: this generator is class-conditional; pass labels [B] (int64)');
      if (labels.ndim !== 1 || labels.size(0) !== B) throw new Error(`TransformerGenerator: expected labels [${B}], got [${labels.shape.join(', ')}]`);
      h = h.add(this.labelEmbed.forward(labels).unsqueeze(1));
    } else if (labels) {
      throw new Error('TransformerGenerator: labels given but the generator is unconditional; set numClasses to condition it');
    }
    for (const block of this.blocks) h = block.forward(h).out;
    const pixels = this.toPixels.forward(this.norm.forward(h)); // [B, N, p²·C]
    if (!this.refine1 || !this.refine2 || !this.refineNorm) {
      return this.affine.forward(unpatchify(pixels, c.patchSize, c.channels).tanh());
    }
    const f = this.refineNorm.forward(unpatchify(pixels, c.patchSize, c.refineChannels)).leakyRelu(0.2);
    const g = this.refine1.forward(f).leakyRelu(0.2);
    return this.affine.forward(this.refine2.forward(g).tanh());
  }
}

// Analytic cost of one forward pass: multiply-accumulates and parameters, layer by layer.
//
// Conventions (those of fvcore / the DeiT and data-free papers' "FLOPs" columns up to the factor 2):
// - only matrix products count: convolutions, Linear layers, and in attention the two batched
//   products QKᵀ and A·V; biases, normalisation, activations, softmax, pooling and residual adds
//   are not counted;
// - a convolution costs C_out·H_out·W_out·(C_in/groups)·k_h·k_w MACs, a Linear applied to T tokens
//   T·in·out, QKᵀ and A·V each heads·T·T·head_dim = T²·dim;
// - FLOPs = 2·MACs (one multiply and one add per accumulate);
// - the cost is that of ONE input image (batch 1).
// The same layer list also gives the parameter count, which the tests check against the built
// modules, so that the analytic structure cannot drift from the real one.
import { VisionTransformer, VIT_DEFAULTS, type ViTConfig } from './vit.js';
import { LeNet5, ResNet, type LeNetConfig, type ResNetConfig } from './cnn.js';
import type { Classifier } from './types.js';

export interface LayerCost {
  /** The module's state-dict name (`blocks.0.attn.qkv`), or `<attention>.qk` / `<attention>.av` for the attention products. */
  name: string;
  kind: 'conv' | 'linear' | 'matmul' | 'norm' | 'embedding';
  macs: number;
  params: number;
}

export interface FlopCount {
  /** 2 · macs. */
  flops: number;
  /** Multiply-accumulates of one image. */
  macs: number;
  /** Total parameters (the layers' plus tokens and position embedding). */
  params: number;
  perLayer: LayerCost[];
}

/** Output size of a convolution along one axis. */
export function convOutSize(size: number, kernel: number, stride = 1, padding = 0, dilation = 1): number {
  return Math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
}

function conv(name: string, cin: number, cout: number, k: number, inSize: number, o: { stride?: number; padding?: number; bias: boolean }): { cost: LayerCost; outSize: number } {
  const outSize = convOutSize(inSize, k, o.stride ?? 1, o.padding ?? 0);
  return {
    cost: { name, kind: 'conv', macs: cout * outSize * outSize * cin * k * k, params: cout * cin * k * k + (o.bias ? cout : 0) },
    outSize,
  };
}

function linear(name: string, tokens: number, fin: number, fout: number, bias = true): LayerCost {
  return { name, kind: 'linear', macs: tokens * fin * fout, params: fin * fout + (bias ? fout : 0) };
}

const norm = (name: string, channels: number): LayerCost => ({ name, kind: 'norm', macs: 0, params: 2 * channels });

/** The ViT / DeiT of vit.ts. */
export function vitCosts(config: Partial<ViTConfig> & Pick<ViTConfig, 'imageSize' | 'inChannels' | 'patchSize' | 'numClasses' | 'dim' | 'depth' | 'heads'>): LayerCost[] {
  const c: ViTConfig = { ...VIT_DEFAULTS, ...config };
  const D = c.dim;
  const grid = c.imageSize / c.patchSize;
  const N = grid * grid;
  const prefix = c.distToken ? 2 : 1;
  const T = N + prefix;
  const hidden = Math.round(D * c.mlpRatio);
  const out: LayerCost[] = [];
  out.push(conv('patch_embed.proj', c.inChannels, D, c.patchSize, c.imageSize, { stride: c.patchSize, bias: true }).cost);
  out.push({ name: 'cls_token', kind: 'embedding', macs: 0, params: D });
  if (c.distToken) out.push({ name: 'dist_token', kind: 'embedding', macs: 0, params: D });
  out.push({ name: 'pos_embed', kind: 'embedding', macs: 0, params: T * D });
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    out.push(norm(`${b}.norm1`, D));
    out.push(linear(`${b}.attn.qkv`, T, D, 3 * D, c.qkvBias));
    // heads · (T × head_dim)·(head_dim × T) = T²·D, and heads · (T × T)·(T × head_dim) = T²·D
    out.push({ name: `${b}.attn.qk`, kind: 'matmul', macs: T * T * D, params: 0 });
    out.push({ name: `${b}.attn.av`, kind: 'matmul', macs: T * T * D, params: 0 });
    out.push(linear(`${b}.attn.proj`, T, D, D));
    out.push(norm(`${b}.norm2`, D));
    out.push(linear(`${b}.mlp.fc1`, T, D, hidden));
    out.push(linear(`${b}.mlp.fc2`, T, hidden, D));
  }
  out.push(norm('norm', D));
  // The heads read one token each (class / distillation), not all T.
  if (c.numClasses > 0) {
    out.push(linear('head', 1, D, c.numClasses));
    if (c.distToken) out.push(linear('head_dist', 1, D, c.numClasses));
  }
  return out;
}

/** DAFL's LeNet-5 / LeNet-5-Half of cnn.ts. */
export function lenetCosts(c: LeNetConfig): LayerCost[] {
  const [c1, c2, c3] = c.channels;
  const pad = (32 - c.imageSize) / 2;
  const l1 = conv('conv1', c.inChannels, c1, 5, c.imageSize, { padding: pad, bias: true });
  const p1 = Math.floor(l1.outSize / 2);
  const l2 = conv('conv2', c1, c2, 5, p1, { bias: true });
  const p2 = Math.floor(l2.outSize / 2);
  const l3 = conv('conv3', c2, c3, 5, p2, { bias: true });
  if (l3.outSize !== 1) throw new Error(`lenetCosts: conv3 output is ${l3.outSize}×${l3.outSize}, expected 1×1`);
  return [l1.cost, l2.cost, l3.cost, linear('fc1', 1, c3, c.hidden), linear('fc2', 1, c.hidden, c.numClasses)];
}

/** The CIFAR ResNets of cnn.ts (BatchNorm counted as 2 parameters per channel; running stats are buffers). */
export function resnetCosts(c: ResNetConfig): LayerCost[] {
  const out: LayerCost[] = [];
  const stem = conv('conv1', c.inChannels, c.widths[0], 3, c.imageSize, { padding: 1, bias: false });
  out.push(stem.cost, norm('bn1', c.widths[0]));
  let size = stem.outSize;
  let inPlanes = c.widths[0];
  for (let s = 0; s < 4; s++) {
    const planes = c.widths[s]!;
    for (let i = 0; i < c.blocks[s]!; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      const b = `layer${s + 1}.${i}`;
      const a = conv(`${b}.conv1`, inPlanes, planes, 3, size, { stride, padding: 1, bias: false });
      const m = conv(`${b}.conv2`, planes, planes, 3, a.outSize, { padding: 1, bias: false });
      out.push(a.cost, norm(`${b}.bn1`, planes), m.cost, norm(`${b}.bn2`, planes));
      if (stride !== 1 || inPlanes !== planes) {
        out.push(conv(`${b}.shortcut.0`, inPlanes, planes, 1, size, { stride, bias: false }).cost, norm(`${b}.shortcut.1`, planes));
      }
      size = a.outSize;
      inPlanes = planes;
    }
  }
  out.push(linear('linear', 1, inPlanes, c.numClasses));
  return out;
}

export function summarize(perLayer: LayerCost[]): FlopCount {
  const macs = perLayer.reduce((n, l) => n + l.macs, 0);
  const params = perLayer.reduce((n, l) => n + l.params, 0);
  return { flops: 2 * macs, macs, params, perLayer };
}

/**
 * Multiply-accumulates and FLOPs (= 2·MACs) of one image through `model`, counting convolutions,
 * Linear layers and the attention products QKᵀ and A·V (see the conventions at the top of the file).
 * Exact for the models of this project (ViT/DeiT, LeNet-5, LeNet-5-Half, CIFAR ResNets).
 */
export function countFlops(model: Classifier): FlopCount {
  if (model instanceof VisionTransformer) return summarize(vitCosts(model.config));
  if (model instanceof LeNet5) return summarize(lenetCosts(model.config));
  if (model instanceof ResNet) return summarize(resnetCosts(model.config));
  throw new Error(`countFlops: no cost model for ${model.constructor.name} (known: VisionTransformer, LeNet5, LeNet5Half, ResNet)`);
}

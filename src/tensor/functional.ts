// Neural-network functions (torch.nn.functional), each one ATen operator.
import { op, REDUCTION, Tensor, type Reduction, type Shape } from './tensor.js';

const h = (t: Tensor | null | undefined): unknown => (t ? t.handle : null);
const pair = (v: number | readonly [number, number]): number[] => (typeof v === 'number' ? [v, v] : [...v]);

/** y = x Wᵀ + b */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return op('aten::linear').t([x.handle, weight.handle, h(bias)]);
}

export interface ConvOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: ConvOptions = {}): Tensor {
  return op('aten::conv2d').t([x.handle, weight.handle, h(bias), pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1]);
}

export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: ConvOptions & { outputPadding?: number | [number, number] } = {}): Tensor {
  return op('aten::conv_transpose2d', 'input').t([
    x.handle, weight.handle, h(bias), pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.outputPadding ?? 0), o.groups ?? 1, pair(o.dilation ?? 1),
  ]);
}

/**
 * Batch normalisation. In training mode the batch statistics normalise and the running buffers are
 * updated in place (momentum as PyTorch: running = (1 − m)·running + m·batch, unbiased variance).
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  training: boolean,
  momentum = 0.1,
  eps = 1e-5,
): Tensor {
  return op('aten::batch_norm').t([x.handle, h(weight), h(bias), h(runningMean), h(runningVar), training, momentum, eps, true]);
}

export function layerNorm(x: Tensor, normalizedShape: Shape, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return op('aten::layer_norm').t([x.handle, normalizedShape, h(weight), h(bias), eps, true]);
}

export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x.mul(1); // a new handle, so callers may dispose either
  return op('aten::dropout').t([x.handle, p, true]);
}

export function softmax(x: Tensor, dim: number): Tensor { return x.softmax(dim); }
export function logSoftmax(x: Tensor, dim: number): Tensor { return x.logSoftmax(dim); }
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor { return x.gelu(approximate); }
export function relu(x: Tensor): Tensor { return x.relu(); }
export function leakyRelu(x: Tensor, slope = 0.01): Tensor { return x.leakyRelu(slope); }

export interface InterpolateOptions {
  size?: [number, number];
  scaleFactor?: number;
  mode?: 'nearest' | 'bilinear';
  alignCorners?: boolean;
}

/** Resizes a batch of images (N, C, H, W) by `size` or `scaleFactor`. */
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  if (!o.size === (o.scaleFactor === undefined)) throw new Error('interpolate: give exactly one of size or scaleFactor');
  const scales = o.scaleFactor === undefined ? null : [o.scaleFactor, o.scaleFactor];
  if ((o.mode ?? 'nearest') === 'nearest') {
    return op('aten::upsample_nearest2d', 'vec').t([x.handle, o.size ?? null, scales]);
  }
  return op('aten::upsample_bilinear2d', 'vec').t([x.handle, o.size ?? null, o.alignCorners ?? false, scales]);
}

/** torch.nn.functional.affine_grid: sampling grid [N, H, W, 2] for the affine maps theta [N, 2, 3]. */
export function affineGrid(theta: Tensor, size: [number, number, number, number], alignCorners = false): Tensor {
  return op('aten::affine_grid_generator').t([theta.handle, size, alignCorners]);
}

/** torch.nn.functional.grid_sample (differentiable in input and grid). */
export function gridSample(
  x: Tensor,
  grid: Tensor,
  o: { mode?: 'bilinear' | 'nearest'; padding?: 'zeros' | 'border' | 'reflection'; alignCorners?: boolean } = {},
): Tensor {
  const mode = o.mode === 'nearest' ? 1 : 0;
  const padding = o.padding === 'border' ? 1 : o.padding === 'reflection' ? 2 : 0;
  return op('aten::grid_sampler').t([x.handle, grid.handle, mode, padding, o.alignCorners ?? false]);
}

/**
 * Pads the last dimensions: `pad` = [left, right, top, bottom, ...] as torch.nn.functional.pad.
 * Modes: 'constant' (with value), 'reflect', 'replicate' (2-D spatial).
 */
export function pad(x: Tensor, padding: readonly number[], mode: 'constant' | 'reflect' | 'replicate' = 'constant', value = 0): Tensor {
  if (mode === 'constant') return op('aten::constant_pad_nd').t([x.handle, padding, value]);
  const name = mode === 'reflect' ? 'aten::reflection_pad2d' : 'aten::replication_pad2d';
  return op(name).t([x.handle, padding]);
}

export function embedding(weight: Tensor, indices: Tensor): Tensor {
  return op('aten::embedding').t([weight.handle, indices.handle]);
}

export function maxPool2d(x: Tensor, kernel: number | [number, number], stride?: number | [number, number], padding: number | [number, number] = 0): Tensor {
  return op('aten::max_pool2d').t([x.handle, pair(kernel), pair(stride ?? kernel), pair(padding)]);
}

export function avgPool2d(x: Tensor, kernel: number | [number, number], stride?: number | [number, number], padding: number | [number, number] = 0): Tensor {
  return op('aten::avg_pool2d').t([x.handle, pair(kernel), pair(stride ?? kernel), pair(padding)]);
}

export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number, number]): Tensor {
  return op('aten::adaptive_avg_pool2d').t([x.handle, pair(outputSize)]);
}

export interface CrossEntropyOptions {
  weight?: Tensor;
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
}

/**
 * Cross-entropy of logits (N, C[, ...]) against class indices (N[, ...], int64) or class
 * probabilities (same shape as the logits), as torch.nn.functional.cross_entropy.
 */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return op('aten::cross_entropy_loss').t([
    logits.handle, target.handle, h(o.weight), REDUCTION[o.reduction ?? 'mean'], o.ignoreIndex ?? -100, o.labelSmoothing ?? 0,
  ]);
}

export function nllLoss(logProbs: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return op('aten::nll_loss').t([logProbs.handle, target.handle, null, REDUCTION[reduction]]);
}

/**
 * KL(target ‖ input) where `input` holds log-probabilities, as torch.nn.functional.kl_div.
 * 'batchmean' divides the sum by the batch size (the mathematically correct KL per sample).
 */
export function klDiv(input: Tensor, target: Tensor, reduction: Reduction | 'batchmean' = 'mean', logTarget = false): Tensor {
  if (reduction === 'batchmean') {
    const total = op('aten::kl_div').t([input.handle, target.handle, REDUCTION.sum, logTarget]);
    const out = total.div(input.shape[0] ?? 1);
    total.dispose();
    return out;
  }
  return op('aten::kl_div').t([input.handle, target.handle, REDUCTION[reduction], logTarget]);
}

export function l1Loss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return op('aten::l1_loss').t([input.handle, target.handle, REDUCTION[reduction]]);
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return op('aten::mse_loss').t([input.handle, target.handle, REDUCTION[reduction]]);
}

export function smoothL1Loss(input: Tensor, target: Tensor, reduction: Reduction = 'mean', beta = 1): Tensor {
  return op('aten::smooth_l1_loss').t([input.handle, target.handle, REDUCTION[reduction], beta]);
}

export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return op('aten::binary_cross_entropy_with_logits').t([logits.handle, target.handle, null, null, REDUCTION[reduction]]);
}

export function cosineSimilarity(x1: Tensor, x2: Tensor, dim = 1, eps = 1e-8): Tensor {
  return op('aten::cosine_similarity').t([x1.handle, x2.handle, dim, eps]);
}

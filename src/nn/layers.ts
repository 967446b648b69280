// Layers with PyTorch's parameter names, shapes and default initialisation, so that state dicts map
// one to one onto PyTorch / timm checkpoints.
import { dropout as dropoutFn, embedding, batchNorm, conv2d, convTranspose2d, layerNorm, linear, type ConvOptions } from '../tensor/functional.js';
import { empty, ones, zeros, tensor, type Tensor } from '../tensor/tensor.js';
import { kaimingUniform_, uniform_, normal_, fans } from './init.js';
import { Module, type Layer } from './module.js';

/**
 * PyTorch's default initialisation of Linear and (transposed) convolution layers: weight
 * kaiming_uniform(a = √5), bias U(±1/√fan_in) with fan_in computed from the weight's layout.
 */
function resetLikePyTorch(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const bound = 1 / Math.sqrt(fans(weight).fanIn);
    uniform_(bias, -bound, bound);
  }
}

/** y = x Wᵀ + b, W: [out, in]. Init as torch.nn.Linear: U(±1/√in) for both. */
export class Linear extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super();
    this.weight = this.registerParameter('weight', empty([outFeatures, inFeatures]));
    this.bias = bias ? this.registerParameter('bias', empty([outFeatures])) : null;
    this.resetParameters();
  }
  resetParameters(): void {
    resetLikePyTorch(this.weight, this.bias);
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export interface Conv2dOptions extends ConvOptions {
  bias?: boolean;
}

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);

export class Conv2d extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly options: ConvOptions;
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, o: Conv2dOptions = {}) {
    super();
    const [kh, kw] = pair(kernelSize);
    const groups = o.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) throw new Error(`Conv2d: channels ${inChannels}→${outChannels} not divisible by groups ${groups}`);
    this.options = { stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups };
    this.weight = this.registerParameter('weight', empty([outChannels, inChannels / groups, kh, kw]));
    this.bias = (o.bias ?? true) ? this.registerParameter('bias', empty([outChannels])) : null;
    resetLikePyTorch(this.weight, this.bias);
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options);
  }
}

export class ConvTranspose2d extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly options: ConvOptions & { outputPadding: Pair };
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, o: Conv2dOptions & { outputPadding?: Pair } = {}) {
    super();
    const [kh, kw] = pair(kernelSize);
    const groups = o.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) throw new Error(`ConvTranspose2d: channels ${inChannels}→${outChannels} not divisible by groups ${groups}`);
    this.options = { stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups, outputPadding: o.outputPadding ?? 0 };
    // PyTorch's transposed-conv weight layout: [in, out/groups, kh, kw].
    this.weight = this.registerParameter('weight', empty([inChannels, outChannels / groups, kh, kw]));
    this.bias = (o.bias ?? true) ? this.registerParameter('bias', empty([outChannels])) : null;
    // torch computes fan_in from dim 1 of this layout: (out/groups)·kh·kw
    resetLikePyTorch(this.weight, this.bias);
  }
  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, this.options as ConvOptions & { outputPadding?: [number, number] });
  }
}

/** Batch normalisation over (N, H, W) per channel, with running statistics for eval. */
export class BatchNorm2d extends Module implements Layer {
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor;
  runningVar: Tensor;
  numBatchesTracked: Tensor;
  constructor(readonly numFeatures: number, readonly eps = 1e-5, readonly momentum = 0.1, affine = true) {
    super();
    this.weight = affine ? this.registerParameter('weight', ones([numFeatures])) : null;
    this.bias = affine ? this.registerParameter('bias', zeros([numFeatures])) : null;
    this.runningMean = this.registerBuffer('running_mean', zeros([numFeatures]));
    this.runningVar = this.registerBuffer('running_var', ones([numFeatures]));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', tensor(0, { dtype: 'int64' }));
  }
  /** When set, called with every forward's input (DeepInversion's feature-statistics prior reads it). */
  inputTap: ((x: Tensor) => void) | null = null;
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`BatchNorm2d: expected (N, C, H, W) input, got [${x.shape.join(', ')}]`);
    this.inputTap?.(x);
    if (this.training) this.numBatchesTracked.add_(1);
    return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, this.training, this.momentum, this.eps);
  }
}

/** Batch normalisation over N for (N, C) inputs (generator heads). */
export class BatchNorm1d extends BatchNorm2d {
  override forward(x: Tensor): Tensor {
    if (x.ndim !== 2 && x.ndim !== 3) throw new Error(`BatchNorm1d: expected (N, C) or (N, C, L) input, got [${x.shape.join(', ')}]`);
    if (this.training) this.numBatchesTracked.add_(1);
    return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, this.training, this.momentum, this.eps);
  }
}

export class LayerNorm extends Module implements Layer {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly normalizedShape: number[];
  constructor(normalizedShape: number | number[], readonly eps = 1e-5, elementwiseAffine = true) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    this.weight = elementwiseAffine ? this.registerParameter('weight', ones(this.normalizedShape)) : null;
    this.bias = elementwiseAffine ? this.registerParameter('bias', zeros(this.normalizedShape)) : null;
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

export class Dropout extends Module implements Layer {
  constructor(readonly p = 0.5) {
    super();
    if (p < 0 || p >= 1) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return dropoutFn(x, this.p, this.training);
  }
}

/** A lookup table of vectors, N(0, 1) initialised as torch.nn.Embedding. */
export class Embedding extends Module {
  weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number) {
    super();
    this.weight = this.registerParameter('weight', empty([numEmbeddings, embeddingDim]));
    normal_(this.weight);
  }
  forward(indices: Tensor): Tensor {
    return embedding(this.weight, indices);
  }
}

export class GELU extends Module implements Layer {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') { super(); }
  forward(x: Tensor): Tensor { return x.gelu(this.approximate); }
}
export class ReLU extends Module implements Layer {
  forward(x: Tensor): Tensor { return x.relu(); }
}
export class LeakyReLU extends Module implements Layer {
  constructor(readonly negativeSlope = 0.01) { super(); }
  forward(x: Tensor): Tensor { return x.leakyRelu(this.negativeSlope); }
}
export class Tanh extends Module implements Layer {
  forward(x: Tensor): Tensor { return x.tanh(); }
}
export class Sigmoid extends Module implements Layer {
  forward(x: Tensor): Tensor { return x.sigmoid(); }
}
export class Identity extends Module implements Layer {
  forward(x: Tensor): Tensor { return x; }
}
export class Flatten extends Module implements Layer {
  constructor(readonly startDim = 1, readonly endDim = -1) { super(); }
  forward(x: Tensor): Tensor { return x.flatten(this.startDim, this.endDim); }
}

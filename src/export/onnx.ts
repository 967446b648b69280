// ONNX export of the project's classifiers: ViT / DeiT (with or without the distillation token),
// DAFL's LeNet-5 / LeNet-5-Half and the CIFAR ResNets. Each graph is the eval-mode forward pass of
// the libtorch module, operator for operator (see onnx-graph.ts), with the weights as initialisers —
// except that a ViT's default layout ('rows', buildViT) arranges the same arithmetic in fewer ONNX
// Runtime nodes (its prefix tokens folded into one position table 'pos_embed.with_prefix_tokens').
//
// Graph interface (recorded in metadata_props too):
//   input   'input'      [batch, C, H, W] float32: pixels in [0, 1] when normalisation is folded in
//                        (the default), else already normalised ((x − mean) / std, as vit-dfkd feeds).
//   output  'logits'     [batch, classes]
//   output  'attention'  [batch, grid·grid] (ViT only, unless disabled): the last block's attention
//                        from the class token to each patch, averaged over heads — the class-attention
//                        map the browser demo draws over the image.
import { writeFileAtomic } from '../util/fs.js';
import { cat, noGrad } from '../tensor/tensor.js';
import { VisionTransformer } from '../models/vit.js';
import { LeNet5, ResNet, type BasicBlock } from '../models/cnn.js';
import { Linear, type BatchNorm2d, type Conv2d } from '../nn/layers.js';
import { batchNorm, conv, imageInput, patchTokens, vitBlock } from './onnx-layers.js';
import type { Classifier } from '../models/types.js';
import type { ModelCard } from '../models/load.js';
import { DEFAULT_OPSET, OnnxGraph, type Dim } from './onnx-graph.js';

export const PRODUCER_VERSION = '0.1.0';

export interface OnnxExportOptions {
  /** Default opset 17 (LayerNormalization); 13–21 are supported. */
  opset?: number;
  /** A symbolic batch dimension ('batch'); otherwise the batch is fixed to `batch`. */
  dynamicBatch?: boolean;
  /** Fixed batch size when not dynamic (default 1). */
  batch?: number;
  /** Fold (x − mean) / std into the graph so it takes [0, 1] pixels (default true). */
  foldNormalization?: boolean;
  /** ViT: add the 'attention' output (default true). */
  attention?: boolean;
  /**
   * ViT graph layout: 'rows' (default; fewer ONNX Runtime nodes, the same arithmetic) or 'tokens'
   * (operator for operator the libtorch forward on [B, T, D]). See buildViT.
   */
  vitLayout?: 'rows' | 'tokens';
}

/** What an export produced (also what `dfkd export` prints). */
export interface OnnxExportInfo {
  family: 'vit' | 'lenet5' | 'resnet';
  opset: number;
  inputs: { name: string; dims: Dim[] }[];
  outputs: { name: string; dims: Dim[] }[];
  nodes: number;
  initializers: number;
  parameters: number;
  bytes: number;
  metadata: Record<string, string>;
}

/** The card fields the export needs; cards from dfkd train / distill have them. */
export type ExportCard = Pick<ModelCard, 'preset' | 'classNames' | 'mean' | 'std'> & Partial<Pick<ModelCard, 'dataset' | 'test_acc'>>;

function checkCard(model: Classifier, card: ExportCard): void {
  const [c] = model.inputShape;
  if (!Array.isArray(card.mean) || !Array.isArray(card.std) || card.mean.length !== c || card.std.length !== c) {
    throw new Error(`ONNX export: the model card needs ${c} channel mean/std values, got mean ${JSON.stringify(card.mean)} std ${JSON.stringify(card.std)}`);
  }
  if (card.std.some((s) => !(s > 0))) throw new Error(`ONNX export: std values must be positive, got ${JSON.stringify(card.std)}`);
  if (!Array.isArray(card.classNames) || card.classNames.length !== model.numClasses) {
    throw new Error(`ONNX export: ${model.numClasses} classes but ${card.classNames?.length ?? 0} class names in the model card`);
  }
}

/**
 * ViT / DeiT (models/vit.ts), eval mode: dropout and stochastic depth are the identity.
 *
 * Layout 'rows' (the default) is the same computation in fewer ONNX Runtime nodes — at batch 1 a
 * small ViT's latency is mostly ORT's per-node cost, not arithmetic (measured in bench/infer.ts):
 *   - the prefix tokens are not expanded to the batch and concatenated (Shape, Gather, Concat,
 *     Expand, Concat): the patch tokens are zero-padded in front (Pad) and one position table is
 *     added whose prefix rows are cls (+ dist) + their position embedding, summed by libtorch in
 *     float32 as its forward pass sums them — 0 + (cls + pos₀) is that same float;
 *   - the blocks run on rows [B·T, D] (vitBlock's `rows`): 2-D MatMul + Add, which ORT fuses into Gemm;
 *     q, k, v from one Split;
 *   - the final LayerNorm is applied to the class (and distillation) token only (it is per token).
 * Layout 'tokens' is the operator-for-operator graph of the libtorch forward on [B, T, D].
 */
function buildViT(g: OnnxGraph, m: VisionTransformer, x: string, batch: Dim, withAttention: boolean, layout: 'rows' | 'tokens'): void {
  const c = m.config;
  const D = c.dim;
  const grid = m.patchEmbed.gridSize;
  const P = m.numPrefixTokens;
  const T = P + grid * grid;
  const patches = patchTokens(g, x, 'patch_embed.proj', m.patchEmbed.proj, grid);
  if (!(m.head instanceof Linear)) throw new Error('ONNX export: this ViT has no classification head (numClasses 0)');
  let h: string;
  if (layout === 'rows') {
    const prefix = [m.clsToken, ...(m.distToken ? [m.distToken] : [])].map((t, i) => t.add(m.posEmbed.narrow(1, i, 1)));
    const table = cat([...prefix, m.posEmbed.narrow(1, P, T - P)], 1);
    const pos = g.weight('pos_embed.with_prefix_tokens', table);
    for (const t of [...prefix, table]) t.dispose();
    const padded = g.op('Pad', [patches, g.constInt64([0, P, 0, 0, 0, 0])], { mode: 'constant' });
    h = g.reshape(g.op('Add', [padded, pos]), [-1, D]);
  } else {
    // prefix tokens expanded to the batch, then + position embedding
    const prefixParts = [g.weight('cls_token', m.clsToken)];
    if (m.distToken) prefixParts.push(g.weight('dist_token', m.distToken));
    const prefix1 = prefixParts.length > 1 ? g.op('Concat', prefixParts, { axis: 1 }) : prefixParts[0]!;
    const prefixShape = typeof batch === 'number' ? g.constInt64([batch, P, D]) : g.op('Concat', [g.batchSizeOf(x), g.constInt64([P, D])], { axis: 0 });
    const prefix = g.op('Expand', [prefix1, prefixShape]);
    h = g.op('Add', [g.op('Concat', [prefix, patches], { axis: 1 }), g.weight('pos_embed', m.posEmbed)]);
  }
  let lastAttn = '';
  m.blocks.forEach((blk, i) => {
    const r = vitBlock(g, blk, h, `blocks.${i}`, T, { rows: layout === 'rows' });
    h = r.out;
    lastAttn = r.attn;
  });
  // the class (and distillation) token's final-normed feature [B, D]
  const normed = layout === 'rows' ? null : g.layerNorm(h, 'norm', m.norm.weight, m.norm.bias, m.norm.eps, D);
  // rows: the final LayerNorm of the class token [B, D] only (of the prefix tokens [B, P, D] with a distillation token)
  const tokens = layout === 'rows' ? g.reshape(h, [-1, T, D]) : null;
  const normedPrefix = tokens && P > 1 ? g.layerNorm(g.slice(tokens, 1, 0, P), 'norm', m.norm.weight, m.norm.bias, m.norm.eps, D) : null;
  const feature = (j: number): string => normed ? g.select(normed, 1, j)
    : normedPrefix ? g.select(normedPrefix, 1, j)
    : g.layerNorm(g.select(tokens!, 1, j), 'norm', m.norm.weight, m.norm.bias, m.norm.eps, D);
  let logits = g.gemm(feature(0), 'head', m.head.weight, m.head.bias);
  if (m.headDist) {
    // DeiT at inference: the mean of the class and distillation heads (models/vit.ts: add, then / 2).
    const dist = g.gemm(feature(1), 'head_dist', m.headDist.weight, m.headDist.bias);
    logits = g.op('Div', [g.op('Add', [logits, dist]), g.constFloat(2)]);
  }
  g.addOutput('logits', logits, [batch, c.numClasses]);
  if (withAttention) {
    // tokens: [B, H, T, T] → class-token row [B, H, T] → mean over heads [B, T] → patches [B, g·g]
    // rows:   [1, B, H, T, T] → [1, B, H, T] → mean over the unit axis and the heads [B, T] → patches;
    //         one head: [B, T, T] → [B, T] (the mean over one head is the value itself)
    const oneHead = layout === 'rows' && c.heads === 1;
    const clsRow = g.select(lastAttn, oneHead ? 1 : layout === 'rows' ? 3 : 2, 0);
    const mean = oneHead ? clsRow : g.reduceMean(clsRow, layout === 'rows' ? [0, 2] : [1], false);
    g.addOutput('attention', g.slice(mean, 1, P, T), [batch, grid * grid]);
  }
}

/** DAFL's LeNet-5 / LeNet-5-Half (models/cnn.ts). */
function buildLeNet(g: OnnxGraph, m: LeNet5, x: string, batch: Dim): void {
  let h = g.op('Relu', [conv(g, x, 'conv1', m.conv1)]);
  h = g.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
  h = g.op('Relu', [conv(g, h, 'conv2', m.conv2)]);
  h = g.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
  h = g.op('Relu', [conv(g, h, 'conv3', m.conv3)]);
  h = g.op('Flatten', [h], { axis: 1 });
  h = g.op('Relu', [g.gemm(h, 'fc1', m.fc1.weight, m.fc1.bias)]);
  g.addOutput('logits', g.gemm(h, 'fc2', m.fc2.weight, m.fc2.bias), [batch, m.numClasses]);
}

function buildBasicBlock(g: OnnxGraph, b: BasicBlock, x: string, name: string): string {
  let h = g.op('Relu', [batchNorm(g, conv(g, x, `${name}.conv1`, b.conv1), `${name}.bn1`, b.bn1)]);
  h = batchNorm(g, conv(g, h, `${name}.conv2`, b.conv2), `${name}.bn2`, b.bn2);
  let sc = x;
  if (b.shortcut) {
    const [sconv, sbn] = b.shortcut.layers as [Conv2d, BatchNorm2d];
    sc = batchNorm(g, conv(g, x, `${name}.shortcut.0`, sconv), `${name}.shortcut.1`, sbn);
  }
  return g.op('Relu', [g.op('Add', [h, sc])]);
}

/** The CIFAR ResNets (models/cnn.ts), BatchNorm in inference mode. */
function buildResNet(g: OnnxGraph, m: ResNet, x: string, batch: Dim): void {
  let h = g.op('Relu', [batchNorm(g, conv(g, x, 'conv1', m.conv1), 'bn1', m.bn1)]);
  m.stages.forEach((stage, s) => stage.forEach((b, i) => (h = buildBasicBlock(g, b, h, `layer${s + 1}.${i}`))));
  h = g.op('Flatten', [g.op('GlobalAveragePool', [h])], { axis: 1 });
  g.addOutput('logits', g.gemm(h, 'linear', m.linear.weight, m.linear.bias), [batch, m.numClasses]);
}

/**
 * Builds the ONNX graph of a classifier and its metadata. The model is read in eval mode (its mode
 * is restored afterwards).
 */
export function classifierToOnnx(model: Classifier, card: ExportCard, o: OnnxExportOptions = {}): { bytes: Uint8Array; info: OnnxExportInfo } {
  checkCard(model, card);
  const opset = o.opset ?? DEFAULT_OPSET;
  const batchSize = o.batch ?? 1;
  if (!o.dynamicBatch && (!Number.isInteger(batchSize) || batchSize < 1)) throw new Error(`ONNX export: batch must be a positive integer, got ${batchSize}`);
  const batch: Dim = o.dynamicBatch ? 'batch' : batchSize;
  const fold = o.foldNormalization ?? true;
  const g = new OnnxGraph(opset, card.preset);
  const wasTraining = model.training;
  model.eval();
  let family: OnnxExportInfo['family'];
  const extra: Record<string, string> = {};
  try {
    noGrad(() => {
      const x = imageInput(g, model.inputShape, card, batch, fold);
      if (model instanceof VisionTransformer) {
        family = 'vit';
        const withAttention = o.attention ?? true;
        const layout = o.vitLayout ?? 'rows';
        buildViT(g, model, x, batch, withAttention, layout);
        extra.graph_layout = layout;
        extra.patch_grid = String(model.patchEmbed.gridSize);
        extra.num_prefix_tokens = String(model.numPrefixTokens);
        extra.dist_token = String(model.distToken !== null);
      } else if (model instanceof LeNet5) {
        family = 'lenet5';
        buildLeNet(g, model, x, batch);
      } else if (model instanceof ResNet) {
        family = 'resnet';
        buildResNet(g, model, x, batch);
      } else {
        throw new Error(`ONNX export: no exporter for ${model.constructor.name}`);
      }
    });
  } finally {
    if (wasTraining) model.train();
  }
  const [c, h, w] = model.inputShape;
  const metadata: Record<string, string> = {
    'vit_dfkd.task': 'classification',
    'vit_dfkd.family': family!,
    'vit_dfkd.preset': card.preset,
    'vit_dfkd.dataset': card.dataset ?? '',
    'vit_dfkd.classes': JSON.stringify(card.classNames),
    'vit_dfkd.input_shape': JSON.stringify([c, h, w]),
    'vit_dfkd.mean': JSON.stringify(card.mean),
    'vit_dfkd.std': JSON.stringify(card.std),
    'vit_dfkd.normalization': fold ? 'folded' : 'external',
    'vit_dfkd.input': fold ? 'pixels in [0, 1], NCHW' : '(pixels - mean) / std, NCHW',
    'vit_dfkd.outputs': JSON.stringify(g.outputs.map((v) => v.name)),
    ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`vit_dfkd.${k}`, v])),
  };
  if (card.test_acc !== undefined) metadata['vit_dfkd.test_acc'] = String(card.test_acc);
  const bytes = g.serialize({ producerVersion: PRODUCER_VERSION, docString: `${card.preset} exported by vit-dfkd`, props: metadata });
  const dims = (v: (typeof g.inputs)[number]): Dim[] =>
    v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
  const parameters = model.parameters().reduce((a, p) => a + p.numel(), 0);
  return {
    bytes,
    info: {
      family: family!, opset, nodes: g.nodes.length, initializers: g.initializers.length, parameters, bytes: bytes.length, metadata,
      inputs: g.inputs.map((v) => ({ name: v.name!, dims: dims(v) })),
      outputs: g.outputs.map((v) => ({ name: v.name!, dims: dims(v) })),
    },
  };
}

/** Exports to a file (atomically: a failed export never leaves a partial file). */
export function exportClassifierOnnx(model: Classifier, card: ExportCard, path: string, o: OnnxExportOptions = {}): OnnxExportInfo {
  const { bytes, info } = classifierToOnnx(model, card, o);
  writeFileAtomic(path, bytes);
  return info;
}

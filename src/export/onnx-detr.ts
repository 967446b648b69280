// ONNX export of the DETR detector (models/detr.ts), eval mode, final decoder layer's predictions:
//
//   input   'input'   [batch, C, H, W] float32 ([0, 1] pixels with normalisation folded in, the default)
//   output  'logits'  [batch, queries, classes + 1] (the last class is "no object")
//   output  'boxes'   [batch, queries, 4] (cx, cy, w, h) in [0, 1] of the image size
//
// Both variants of the model: the patch stem or the conv stem (stride-2 3×3 Conv → BatchNormalization
// with the running statistics → Relu, then the 1×1 projection to the width), and plain DETR queries
// (zero targets, learned positional queries) or anchor queries with iterative box refinement
// (DAB-DETR: per decoder layer the anchor's sine embedding → 2-layer MLP positional query, then
// box = σ(σ⁻¹(anchor) + Δ) with the model's clamped inverse sigmoid, the next layer's anchor).
// The encoder reuses the ViT block graph; the decoder layers use torch.nn.MultiheadAttention's graph
// (onnx-layers.ts). The auxiliary predictions of earlier decoder layers are a training-time output
// and are not exported (the anchor variant computes every layer's box, which refines the next anchor,
// but outputs only the last layer's).
import { noGrad } from '../tensor/tensor.js';
import type { DETR } from '../models/detr.js';
import { writeFileAtomic } from '../util/fs.js';
import { DEFAULT_OPSET, OnnxGraph, type Dim } from './onnx-graph.js';
import type { Tensor } from '../tensor/tensor.js';
import { batchNorm, conv, imageInput, multiheadAttention, patchTokens, vitBlock } from './onnx-layers.js';
import { PRODUCER_VERSION, type OnnxExportInfo, type OnnxExportOptions } from './onnx.js';

/** The card fields the detector export needs (a DetectorCard from detection training has them). */
export interface DetectorExportCard {
  preset: string;
  classNames: string[];
  mean: number[];
  std: number[];
  dataset?: string;
  test_map?: number;
}

/** The model's inverseSigmoid eps (models/detr.ts): log(clamp(x, ε, 1 − ε)) − log(clamp(1 − x, ε, 1 − ε)). */
const INVERSE_SIGMOID_EPS = 1e-5;
/** The temperature of models/detr.ts's anchorSineEmbedding. */
const ANCHOR_TEMPERATURE = 10000;

export function inverseSigmoidGraph(g: OnnxGraph, x: string): string {
  const eps = INVERSE_SIGMOID_EPS;
  const a = g.op('Log', [g.clip(x, eps, 1 - eps)]);
  const b = g.op('Log', [g.clip(g.op('Sub', [g.constFloat(1), x]), eps, 1 - eps)]);
  return g.op('Sub', [a, b]);
}

/**
 * models/detr.ts's anchorSineEmbedding on anchors [B, Q, 4]: per coordinate the angles 2π·a·f_i
 * (f_i = T^(−2i / (D/4)), i < D/8), sin and cos interleaved → [B, Q, 4 · D/8 · 2] = [B, Q, D].
 */
export function anchorSineEmbeddingGraph(g: OnnxGraph, anchor: string, Q: number, D: number): string {
  const half = D / 8;
  if (!Number.isInteger(half)) throw new Error(`ONNX export: DETR width ${D} must be a multiple of 8 for anchor queries`);
  const inv = Float32Array.from({ length: half }, (_, i) => 1 / ANCHOR_TEMPERATURE ** ((2 * i) / (D / 4)));
  const freq = g.has('anchor_sine.freq') ? 'anchor_sine.freq' : g.initFloat('anchor_sine.freq', inv, [half]);
  const a = g.op('Mul', [g.unsqueeze(g.op('Mul', [anchor, g.constFloat(2 * Math.PI)]), -1), freq]); // [B, Q, 4, half]
  const sc = g.op('Concat', [g.unsqueeze(g.op('Sin', [a]), -1), g.unsqueeze(g.op('Cos', [a]), -1)], { axis: -1 }); // [B, Q, 4, half, 2]
  return g.reshape(sc, [0, Q, D]);
}

/**
 * What this graph describes: the 'patch' or 'conv' stem (BatchNorm with running statistics) and plain
 * or anchor queries, with the modules the model's forward pass uses. Anything else is refused rather
 * than exported wrongly.
 */
function checkSupported(model: DETR): void {
  const c = model.config;
  if (c.stem !== 'patch' && c.stem !== 'conv') throw new Error(`ONNX export: DETR with the '${String(c.stem)}' stem is not supported (only 'patch' and 'conv')`);
  if ((c.stem === 'conv') !== (model.stem !== null)) throw new Error(`ONNX export: this DETR's config says stem '${c.stem}' but the model ${model.stem ? 'has' : 'has no'} conv stem`);
  if (model.stem) {
    const { convs, norms } = model.stem;
    if (convs.length !== norms.length || convs.length === 0) throw new Error(`ONNX export: DETR conv stem with ${convs.length} convolutions and ${norms.length} BatchNorms is not supported`);
  }
  const hasAnchors = model.anchorLogits !== null && model.anchorHead !== null;
  if (Boolean(c.anchors) !== hasAnchors) throw new Error(`ONNX export: this DETR's config says anchors ${String(c.anchors)} but the model ${hasAnchors ? 'has' : 'lacks'} anchor parameters`);
  if (hasAnchors) {
    if (model.anchorHead!.layers.length !== 2) throw new Error(`ONNX export: DETR anchor head with ${model.anchorHead!.layers.length} layers is not supported (2)`);
    if (c.dim % 8 !== 0) throw new Error(`ONNX export: DETR width ${c.dim} must be a multiple of 8 for anchor queries`);
  }
}

export function detectorToOnnx(model: DETR, card: DetectorExportCard, o: Omit<OnnxExportOptions, 'attention'> = {}): { bytes: Uint8Array; info: Omit<OnnxExportInfo, 'family'> & { family: 'detr' } } {
  const c = model.config;
  checkSupported(model);
  if (!Array.isArray(card.classNames) || card.classNames.length !== c.numClasses) {
    throw new Error(`ONNX export: the detector has ${c.numClasses} classes but ${card.classNames?.length ?? 0} class names in its card`);
  }
  if (!Array.isArray(card.mean) || card.mean.length !== c.inChannels || !Array.isArray(card.std) || card.std.length !== c.inChannels || card.std.some((s) => !(s > 0))) {
    throw new Error(`ONNX export: the detector card needs ${c.inChannels} channel mean/std values (std > 0), got mean ${JSON.stringify(card.mean)} std ${JSON.stringify(card.std)}`);
  }
  const opset = o.opset ?? DEFAULT_OPSET;
  const batchSize = o.batch ?? 1;
  if (!o.dynamicBatch && (!Number.isInteger(batchSize) || batchSize < 1)) throw new Error(`ONNX export: batch must be a positive integer, got ${batchSize}`);
  const batch: Dim = o.dynamicBatch ? 'batch' : batchSize;
  const fold = o.foldNormalization ?? true;
  const g = new OnnxGraph(opset, card.preset);
  const D = c.dim;
  const N = model.gridSize ** 2;
  const Q = c.numQueries;
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      const x = imageInput(g, model.inputShape, card, batch, fold);
      // encoder: patches + fixed sine positions → ViT blocks → norm
      // the fixed sine position embedding [1, N, D] (a non-persistent buffer: not in the state dict)
      const posT = model.namedBuffers().find(([k]) => k === 'pos_embed')?.[1];
      if (!posT) throw new Error('ONNX export: this DETR has no pos_embed buffer');
      const pos = g.weight('pos_embed', posT);
      let stemOut = x;
      if (model.stem) {
        model.stem.convs.forEach((cv, i) => {
          const bn = model.stem!.norms[i]!;
          stemOut = g.op('Relu', [batchNorm(g, conv(g, stemOut, `stem.convs.${i}`, cv), `stem.norms.${i}`, bn)]);
        });
      }
      let h = g.op('Add', [patchTokens(g, stemOut, 'patch_embed', model.patchEmbed, model.gridSize), pos]);
      model.blocks.forEach((blk, i) => (h = vitBlock(g, blk, h, `blocks.${i}`, N).out));
      const memory = g.layerNorm(h, 'encoder_norm', model.encoderNorm.weight, model.encoderNorm.bias, model.encoderNorm.eps, D);
      const shape = typeof batch === 'number' ? g.constInt64([batch, Q, D]) : g.op('Concat', [g.batchSizeOf(x), g.constInt64([Q, D])], { axis: 0 });
      const memoryKey = g.op('Add', [memory, pos]);
      const linear = (v: string, name: string, l: { weight: Tensor; bias: Tensor | null }): string => g.linear(v, name, l.weight, l.bias);
      const decoderNorm = (v: string): string => g.layerNorm(v, 'decoder_norm', model.decoderNorm.weight, model.decoderNorm.bias, model.decoderNorm.eps, D);
      /** The box MLP before its sigmoid (shared by every decoder layer with anchor queries). */
      const boxRaw = (v: string): string => {
        let b = v;
        model.boxHead.layers.forEach((l, i) => {
          b = linear(b, `box_head.layers.${i}`, l);
          if (i < model.boxHead.layers.length - 1) b = g.op('Relu', [b]);
        });
        return b;
      };
      const anchors = model.anchorLogits !== null && model.anchorHead !== null;
      // Plain DETR: zero targets, learned query positions ([1, Q, D], broadcast over the batch).
      // Anchor queries: query_embed is the content (the targets), σ(anchor_logits) the first anchors.
      let tgt = anchors
        ? g.op('Expand', [g.reshape(g.weight('query_embed', model.queryEmbed), [1, Q, D]), shape])
        : g.op('Expand', [g.initFloat('decoder.tgt0', new Float32Array(Q * D), [1, Q, D]), shape]);
      const plainQueryPos = anchors ? null : g.reshape(g.weight('query_embed', model.queryEmbed), [1, Q, D]);
      let anchor = anchors ? g.op('Sigmoid', [g.reshape(g.weight('anchor_logits', model.anchorLogits!), [1, Q, 4])]) : null;
      let boxes: string | null = null;
      let normed: string | null = null;
      model.decoder.forEach((layer, i) => {
        const p = `decoder.${i}`;
        let queryPos = plainQueryPos!;
        if (anchor) {
          const [l0, l1] = model.anchorHead!.layers;
          queryPos = linear(g.op('Relu', [linear(anchorSineEmbeddingGraph(g, anchor, Q, D), 'anchor_head.layers.0', l0!)]), 'anchor_head.layers.1', l1!);
        }
        const n1 = g.layerNorm(tgt, `${p}.norm1`, layer.norm1.weight, layer.norm1.bias, layer.norm1.eps, D);
        const qk = g.op('Add', [n1, queryPos]);
        const h1 = g.op('Add', [tgt, multiheadAttention(g, layer.selfAttn, `${p}.self_attn`, qk, qk, n1, Q, Q).out]);
        const n2 = g.layerNorm(h1, `${p}.norm2`, layer.norm2.weight, layer.norm2.bias, layer.norm2.eps, D);
        const cross = multiheadAttention(g, layer.crossAttn, `${p}.cross_attn`, g.op('Add', [n2, queryPos]), memoryKey, memory, Q, N);
        const h2 = g.op('Add', [h1, cross.out]);
        const n3 = g.layerNorm(h2, `${p}.norm3`, layer.norm3.weight, layer.norm3.bias, layer.norm3.eps, D);
        const mlp = linear(g.gelu(linear(n3, `${p}.mlp.fc1`, layer.mlp.fc1)), `${p}.mlp.fc2`, layer.mlp.fc2);
        tgt = g.op('Add', [h2, mlp]);
        if (anchor) {
          // refinement in logit space: box = σ(σ⁻¹(anchor) + Δ), the next layer's anchor
          normed = decoderNorm(tgt);
          anchor = g.op('Sigmoid', [g.op('Add', [inverseSigmoidGraph(g, anchor), boxRaw(normed)])]);
          boxes = anchor;
        }
      });
      const q = normed ?? decoderNorm(tgt); // with anchor queries: the normed features the last box came from
      g.addOutput('logits', linear(q, 'class_head', model.classHead), [batch, Q, c.numClasses + 1]);
      g.addOutput('boxes', boxes ?? g.op('Sigmoid', [boxRaw(q)]), [batch, Q, 4]);
    });
  } finally {
    if (wasTraining) model.train();
  }
  const metadata: Record<string, string> = {
    'vit_dfkd.task': 'detection',
    'vit_dfkd.family': 'detr',
    'vit_dfkd.preset': card.preset,
    'vit_dfkd.dataset': card.dataset ?? '',
    'vit_dfkd.classes': JSON.stringify(card.classNames),
    'vit_dfkd.input_shape': JSON.stringify(model.inputShape),
    'vit_dfkd.mean': JSON.stringify(card.mean),
    'vit_dfkd.std': JSON.stringify(card.std),
    'vit_dfkd.normalization': fold ? 'folded' : 'external',
    'vit_dfkd.input': fold ? 'pixels in [0, 1], NCHW' : '(pixels - mean) / std, NCHW',
    'vit_dfkd.outputs': JSON.stringify(['logits', 'boxes']),
    'vit_dfkd.boxes': 'cx, cy, w, h as fractions of the image; logits: last class = no object',
    'vit_dfkd.num_queries': String(Q),
    'vit_dfkd.detr': JSON.stringify({ anchors: c.anchors, stem: c.stem }),
  };
  if (card.test_map !== undefined) metadata['vit_dfkd.test_map'] = String(card.test_map);
  const bytes = g.serialize({ producerVersion: PRODUCER_VERSION, docString: `${card.preset} (DETR) exported by vit-dfkd`, props: metadata });
  const dims = (v: (typeof g.inputs)[number]): Dim[] => v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
  return {
    bytes,
    info: {
      family: 'detr', opset, nodes: g.nodes.length, initializers: g.initializers.length, parameters: model.numParameters(), bytes: bytes.length, metadata,
      inputs: g.inputs.map((v) => ({ name: v.name!, dims: dims(v) })),
      outputs: g.outputs.map((v) => ({ name: v.name!, dims: dims(v) })),
    },
  };
}

export function exportDetectorOnnx(model: DETR, card: DetectorExportCard, path: string, o: Omit<OnnxExportOptions, 'attention'> = {}): OnnxExportInfo | ReturnType<typeof detectorToOnnx>['info'] {
  const { bytes, info } = detectorToOnnx(model, card, o);
  writeFileAtomic(path, bytes);
  return info;
}

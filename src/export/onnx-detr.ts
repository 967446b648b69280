// ONNX export of the DETR detector (models/detr.ts), eval mode, final decoder layer's predictions:
//
//   input   'input'   [batch, C, H, W] float32 ([0, 1] pixels with normalisation folded in, the default)
//   output  'logits'  [batch, queries, classes + 1] (the last class is "no object")
//   output  'boxes'   [batch, queries, 4] (cx, cy, w, h) in [0, 1] of the image size
//
// The encoder reuses the ViT block graph; the decoder layers use torch.nn.MultiheadAttention's graph
// (onnx-layers.ts). The auxiliary predictions of earlier decoder layers are a training-time output
// and are not exported.
import { noGrad } from '../tensor/tensor.js';
import type { DETR } from '../models/detr.js';
import { writeFileAtomic } from '../util/fs.js';
import { DEFAULT_OPSET, OnnxGraph, type Dim } from './onnx-graph.js';
import { imageInput, multiheadAttention, patchTokens, vitBlock } from './onnx-layers.js';
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

export function detectorToOnnx(model: DETR, card: DetectorExportCard, o: Omit<OnnxExportOptions, 'attention'> = {}): { bytes: Uint8Array; info: Omit<OnnxExportInfo, 'family'> & { family: 'detr' } } {
  const c = model.config;
  // Variants this graph does not describe (anchor queries with box refinement, a convolutional stem)
  // are refused rather than exported wrongly.
  const extra = c as unknown as { anchors?: boolean; stem?: string };
  if (extra.anchors) throw new Error('ONNX export: DETR with anchor queries (anchors: true) is not supported yet');
  if (extra.stem !== undefined && extra.stem !== 'patch') throw new Error(`ONNX export: DETR with the '${extra.stem}' stem is not supported yet (only the patch stem)`);
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
      let h = g.op('Add', [patchTokens(g, x, 'patch_embed', model.patchEmbed, model.gridSize), pos]);
      model.blocks.forEach((blk, i) => (h = vitBlock(g, blk, h, `blocks.${i}`, N).out));
      const memory = g.layerNorm(h, 'encoder_norm', model.encoderNorm.weight, model.encoderNorm.bias, model.encoderNorm.eps, D);
      // decoder: zero targets, learned query positions ([1, Q, D], broadcast over the batch)
      const shape = typeof batch === 'number' ? g.constInt64([batch, Q, D]) : g.op('Concat', [g.batchSizeOf(x), g.constInt64([Q, D])], { axis: 0 });
      let tgt = g.op('Expand', [g.initFloat('decoder.tgt0', new Float32Array(Q * D), [1, Q, D]), shape]);
      const queryPos = g.reshape(g.weight('query_embed', model.queryEmbed), [1, Q, D]);
      const memoryKey = g.op('Add', [memory, pos]);
      model.decoder.forEach((layer, i) => {
        const p = `decoder.${i}`;
        const n1 = g.layerNorm(tgt, `${p}.norm1`, layer.norm1.weight, layer.norm1.bias, layer.norm1.eps, D);
        const qk = g.op('Add', [n1, queryPos]);
        const h1 = g.op('Add', [tgt, multiheadAttention(g, layer.selfAttn, `${p}.self_attn`, qk, qk, n1, Q, Q).out]);
        const n2 = g.layerNorm(h1, `${p}.norm2`, layer.norm2.weight, layer.norm2.bias, layer.norm2.eps, D);
        const cross = multiheadAttention(g, layer.crossAttn, `${p}.cross_attn`, g.op('Add', [n2, queryPos]), memoryKey, memory, Q, N);
        const h2 = g.op('Add', [h1, cross.out]);
        const n3 = g.layerNorm(h2, `${p}.norm3`, layer.norm3.weight, layer.norm3.bias, layer.norm3.eps, D);
        const mlp = g.linear(g.gelu(g.linear(n3, `${p}.mlp.fc1`, layer.mlp.fc1.weight, layer.mlp.fc1.bias)), `${p}.mlp.fc2`, layer.mlp.fc2.weight, layer.mlp.fc2.bias);
        tgt = g.op('Add', [h2, mlp]);
      });
      const q = g.layerNorm(tgt, 'decoder_norm', model.decoderNorm.weight, model.decoderNorm.bias, model.decoderNorm.eps, D);
      g.addOutput('logits', g.linear(q, 'class_head', model.classHead.weight, model.classHead.bias), [batch, Q, c.numClasses + 1]);
      let b = q;
      model.boxHead.layers.forEach((l, i) => {
        b = g.linear(b, `box_head.layers.${i}`, l.weight, l.bias);
        if (i < model.boxHead.layers.length - 1) b = g.op('Relu', [b]);
      });
      g.addOutput('boxes', g.op('Sigmoid', [b]), [batch, Q, 4]);
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

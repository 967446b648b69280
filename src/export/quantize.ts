// Static int8 quantisation of an exported classifier, in ONNX's QDQ format (what ONNX Runtime's own
// `quantize_static` writes): every Conv, Gemm and MatMul with a constant weight reads
//   weight   int8, symmetric per output channel (zero point 0) → DequantizeLinear(axis)
//   bias     int32 at scale s_x · s_w[c] (Conv, Gemm)            → DequantizeLinear(axis 0)
//   inputs   QuantizeLinear → DequantizeLinear, uint8 asymmetric per tensor
//   output   (Conv) QuantizeLinear → DequantizeLinear, the same (so the CPU EP can fuse the group into
//            QLinearConv; MatMul and Gemm keep a float output and become MatMulIntegerToFloat and
//            QGemm — ONNX Runtime's QDQ fusions run at graph optimisation level 'extended' and 'all')
// and everything else (LayerNormalization, Softmax, GELU, Add, the normalisation in front) stays
// float32. Activation ranges are min / max over a calibration set, measured by running the float graph
// in ONNX Runtime with the quantised tensors as extra outputs — the exact values the int8 graph sees.
// The calibration images come from calibration.ts: synthetic images of a distillation run's own
// generator or image bank (data-free end to end, as PSAQ-ViT calibrates ViT quantisers on synthetic
// images), never the real data.
//
// The ViT's attention products (q·kᵀ and softmax·v, both operands activations) stay float unless
// `attentionMatMuls` is set: measured in the README's Deployment section.
import type onnxProto from 'onnx-proto';
import type { Tensor } from '../tensor/tensor.js';
import { decodeModel, onnx } from './onnx-graph.js';
import { loadOnnx, runOnnx } from './ort.js';

type ModelProto = onnxProto.onnx.ModelProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

const DT = onnx.TensorProto.DataType;

/** uint8 activations: ONNX Runtime's default activation type for QDQ on the CPU EP (U8S8 kernels). */
export const ACTIVATION_QMIN = 0;
export const ACTIVATION_QMAX = 255;
/** int8 weights, symmetric over the restricted range [−127, 127] (−128 unused, as ORT's symmetric weights). */
export const WEIGHT_QMAX = 127;
/**
 * ORT's `reduce_range`: 7-bit weights (±63). On AVX2 without VNNI, MLAS's U8S8 kernels add pairs of
 * u8·s8 products in int16 (vpmaddubsw), which saturates for 255·127·2 > 32767; ±63 cannot.
 */
export const WEIGHT_QMAX_REDUCED = 63;
/** Smallest float constant stored as int8 with `int8Constants` (smaller ones cost more in scales and nodes than they save). */
export const INT8_CONSTANT_MIN_VALUES = 64;
/** Per-axis DequantizeLinear (the `axis` attribute) exists from opset 13. */
export const MIN_QDQ_OPSET = 13;

export class QuantizationError extends Error {
  override name = 'QuantizationError';
}

/** Round half to even, as QuantizeLinear does (ONNX spec: "rounding to nearest ties to even"). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

export interface QuantParams {
  /** float32 scale. */
  scale: number;
  zeroPoint: number;
}

/**
 * Asymmetric uint8 parameters for values in [lo, hi]: the range is widened to contain 0 (so that 0,
 * ReLU's and the padding's value, is exact), scale = (max − min) / 255, zero point = round(−min / scale).
 * E.g. [−1, 2] → scale 3/255, zero point 85.
 */
export function activationQuantParams(lo: number, hi: number): QuantParams {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) throw new QuantizationError(`activation range [${lo}, ${hi}] is not a finite interval`);
  const a = Math.min(0, lo);
  const b = Math.max(0, hi);
  if (b === a) return { scale: 1, zeroPoint: 0 }; // an all-zero tensor: any scale represents it
  const scale = Math.fround((b - a) / (ACTIVATION_QMAX - ACTIVATION_QMIN));
  return { scale, zeroPoint: clamp(roundHalfEven(ACTIVATION_QMIN - a / scale), ACTIVATION_QMIN, ACTIVATION_QMAX) };
}

/** x → clamp(round(x / scale) + zero point), as QuantizeLinear computes it (for tests and checks). */
export function quantizeValue(x: number, p: QuantParams, qmin = ACTIVATION_QMIN, qmax = ACTIVATION_QMAX): number {
  return clamp(roundHalfEven(x / p.scale) + p.zeroPoint, qmin, qmax);
}

/**
 * Symmetric per-channel int8 weights along `axis` of a tensor of `shape`: scale_c = max |w_c| / qmax
 * (zero point 0), q = clamp(round(w / scale_c), −qmax, qmax). An all-zero channel gets scale 1.
 */
export function quantizeWeightPerChannel(w: Float32Array, shape: readonly number[], axis: number, qmax = WEIGHT_QMAX): { q: Int8Array; scales: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  if (w.length !== n) throw new QuantizationError(`weight has ${w.length} values for shape [${shape.join(', ')}]`);
  if (axis < 0 || axis >= shape.length) throw new QuantizationError(`axis ${axis} out of range for shape [${shape.join(', ')}]`);
  const C = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number): number => Math.floor(i / inner) % C;
  const maxAbs = new Float64Array(C);
  for (let i = 0; i < n; i++) {
    const v = w[i]!;
    if (!Number.isFinite(v)) throw new QuantizationError(`weight value ${v} at index ${i} is not finite`);
    const c = channelOf(i);
    if (Math.abs(v) > maxAbs[c]!) maxAbs[c] = Math.abs(v);
  }
  const scales = Float32Array.from(maxAbs, (m) => (m > 0 ? m / qmax : 1));
  const q = new Int8Array(n);
  for (let i = 0; i < n; i++) q[i] = clamp(roundHalfEven(w[i]! / scales[channelOf(i)]!), -qmax, qmax);
  return { q, scales };
}

/** int32 bias at scale s_x · s_w[c] per channel (what QLinearConv / QGemm add to the int32 accumulator). */
export function quantizeBias(b: Float32Array, inputScale: number, weightScales: Float32Array): { q: Int32Array; scales: Float32Array } {
  if (b.length !== weightScales.length) throw new QuantizationError(`bias has ${b.length} values for ${weightScales.length} weight channels`);
  const scales = Float32Array.from(weightScales, (s) => Math.fround(inputScale * s));
  const q = Int32Array.from(b, (v, c) => clamp(roundHalfEven(v / scales[c]!), -(2 ** 31), 2 ** 31 - 1));
  return { q, scales };
}

// ---- the plan: which nodes and tensors are quantised --------------------------------------------

/** A node whose weight is quantised. */
interface WeightedNode {
  node: NodeProto;
  op: 'Conv' | 'Gemm' | 'MatMul';
  activation: string;
  weight: string;
  /** The output-channel axis of the weight: 0 for Conv and Gemm with transB, 1 for MatMul's [K, N]. */
  axis: number;
  bias?: string;
}

export interface QuantizationPlan {
  weighted: WeightedNode[];
  /** activation × activation MatMuls quantised (attention, with `attentionMatMuls`). */
  attention: NodeProto[];
  /** Tensors that get a QuantizeLinear → DequantizeLinear pair, in graph order. */
  activations: string[];
  counts: Record<'Conv' | 'Gemm' | 'MatMul' | 'attentionMatMul', number>;
}

export interface QuantizeOptions {
  /** Also quantise the MatMuls whose operands are both activations (a ViT's q·kᵀ and softmax·v). Default false. */
  attentionMatMuls?: boolean;
  /**
   * 7-bit weights (WEIGHT_QMAX_REDUCED), ORT's reduce_range. Default true: on this AVX2 machine 8-bit
   * weights moved the LeNet-5 teacher's logits by up to 1.3 (U8S8 saturation), 7-bit by 0.16.
   */
  reduceRange?: boolean;
  /**
   * Also store the float constants that only Add reads (Linear biases after a MatMul, the ViT's position
   * embedding) as int8 + DequantizeLinear (symmetric, per channel of the last axis for rank ≥ 2, per
   * tensor for vectors): weight-only, they are dequantised to float and added in float. Default true:
   * without them a ViT's file is ~3.4× smaller, not the ≥ 3.5× the int8 export is for.
   */
  int8Constants?: boolean;
  /** Images per ONNX Runtime call during calibration (dynamic-batch graphs; default 32). */
  batch?: number;
}

const intAttr = (n: NodeProto, name: string, dflt: number): number => {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.i) : dflt;
};
const floatAttr = (n: NodeProto, name: string, dflt: number): number => {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.f) : dflt;
};
const dimsOf = (t: TensorProto): number[] => (t.dims ?? []).map((d) => Number(d));

function opsetOf(m: ModelProto): number {
  const d = m.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx');
  return d ? Number(d.version) : 0;
}

/** Which nodes and tensors are quantised (the float model is not changed). */
export function planQuantization(m: ModelProto, o: QuantizeOptions = {}): QuantizationPlan {
  const g = m.graph;
  if (!g) throw new QuantizationError('the model has no graph');
  const opset = opsetOf(m);
  if (opset < MIN_QDQ_OPSET) throw new QuantizationError(`opset ${opset}: per-channel DequantizeLinear needs opset ≥ ${MIN_QDQ_OPSET}; export with --opset 13 or later`);
  const init = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  const isFloatInit = (name: string | undefined, rank?: number): boolean => {
    const t = name ? init.get(name) : undefined;
    return !!t && t.dataType === DT.FLOAT && (rank === undefined || dimsOf(t).length === rank);
  };
  const weighted: WeightedNode[] = [];
  const attention: NodeProto[] = [];
  for (const n of g.node ?? []) {
    const [x, w, b] = n.input ?? [];
    if (!x || !w) continue;
    if (n.opType === 'Conv' && isFloatInit(w, 4) && !init.has(x)) {
      weighted.push({ node: n, op: 'Conv', activation: x, weight: w, axis: 0, bias: b && isFloatInit(b, 1) ? b : undefined });
    } else if (n.opType === 'Gemm' && isFloatInit(w, 2) && !init.has(x) && intAttr(n, 'transA', 0) === 0 && floatAttr(n, 'alpha', 1) === 1 && floatAttr(n, 'beta', 1) === 1) {
      const axis = intAttr(n, 'transB', 0) === 1 ? 0 : 1;
      const N = dimsOf(init.get(w)!)[axis]!;
      const biasOk = b && isFloatInit(b, 1) && dimsOf(init.get(b)!)[0] === N;
      weighted.push({ node: n, op: 'Gemm', activation: x, weight: w, axis, bias: biasOk ? b : undefined });
    } else if (n.opType === 'MatMul' && isFloatInit(w, 2) && !init.has(x)) {
      weighted.push({ node: n, op: 'MatMul', activation: x, weight: w, axis: 1 });
    } else if (n.opType === 'MatMul' && o.attentionMatMuls && !init.has(x) && !init.has(w)) {
      attention.push(n);
    }
  }
  const counts = { Conv: 0, Gemm: 0, MatMul: 0, attentionMatMul: attention.length };
  for (const q of weighted) counts[q.op]++;
  if (weighted.length === 0) {
    throw new QuantizationError('nothing to quantise: the graph has no Conv, Gemm or MatMul with a constant float weight (int8 QDQ covers those operators)');
  }
  // A Bias shared with an unquantised reader (or by two quantised nodes with other input scales) stays float.
  const readers = new Map<string, number>();
  for (const n of g.node ?? []) for (const i of n.input ?? []) readers.set(i, (readers.get(i) ?? 0) + 1);
  for (const q of weighted) if (q.bias && readers.get(q.bias) !== 1) q.bias = undefined;
  // Tensors that feed a graph output through an Identity (or are one) keep their float values:
  // the logits are what the user reads, and quantising them only adds error.
  const graphOutputs = new Set((g.output ?? []).map((v) => v.name!));
  const feedsOutput = new Set<string>(graphOutputs);
  for (const n of g.node ?? []) if (n.opType === 'Identity' && graphOutputs.has(n.output![0]!)) feedsOutput.add(n.input![0]!);
  const wanted = new Set<string>();
  for (const q of weighted) {
    wanted.add(q.activation);
    // Conv needs a quantised output to become QLinearConv; MatMul and Gemm with a float output become
    // MatMulIntegerToFloat / QGemm, so their outputs stay float (less error, fewer nodes).
    if (q.op === 'Conv') wanted.add(q.node.output![0]!);
  }
  for (const n of attention) {
    wanted.add(n.input![0]!);
    wanted.add(n.input![1]!);
    wanted.add(n.output![0]!);
  }
  // Graph order: graph inputs first, then node outputs as they are produced.
  const ordered = [...(g.input ?? []).map((v) => v.name!), ...(g.node ?? []).flatMap((n) => n.output ?? [])];
  const activations = ordered.filter((t) => wanted.has(t) && !feedsOutput.has(t));
  return { weighted, attention, activations, counts };
}

// ---- calibration ---------------------------------------------------------------------------------

/** Min / max of each named tensor of the float graph over calibration images. */
export type Ranges = Map<string, [number, number]>;

/**
 * Runs the float graph in ONNX Runtime (optimisations off, so every tensor is computed as exported)
 * with `tensors` as extra outputs over `images` ([N, C, H, W] pixels in [0, 1], fed as runOnnx feeds
 * them) and returns each tensor's min / max.
 */
export async function calibrateRanges(floatBytes: Uint8Array, tensors: readonly string[], images: Tensor, o: { batch?: number } = {}): Promise<Ranges> {
  if (images.ndim !== 4 || images.size(0) === 0) {
    throw new QuantizationError(`the calibration set is empty (${images.ndim === 4 ? 0 : `shape [${images.shape.join(', ')}]`} images): int8 calibration needs synthetic images`);
  }
  const m = decodeModel(floatBytes);
  const outputs = new Set(m.graph!.output!.map((v) => v.name!));
  for (const t of tensors) if (!outputs.has(t)) m.graph!.output!.push({ name: t, type: { tensorType: { elemType: DT.FLOAT } } });
  const loaded = await loadOnnx(onnx.ModelProto.encode(m).finish(), { optimization: 'disabled' });
  const ranges: Ranges = new Map(tensors.map((t) => [t, [Infinity, -Infinity]]));
  const n = images.size(0);
  const step = o.batch ?? 32;
  try {
    for (let s = 0; s < n; s += step) {
      const chunk = images.narrow(0, s, Math.min(step, n - s));
      const outs = await runOnnx(loaded, chunk, step);
      chunk.dispose();
      for (const t of tensors) {
        const r = ranges.get(t)!;
        const data = outs[t]!.data;
        for (let i = 0; i < data.length; i++) {
          const v = data[i]!;
          if (v < r[0]) r[0] = v;
          if (v > r[1]) r[1] = v;
          if (v !== v) throw new QuantizationError(`calibration: tensor '${t}' is NaN on a calibration image`);
        }
      }
    }
  } finally {
    await loaded.session.release();
  }
  return ranges;
}

// ---- the QDQ rewrite -----------------------------------------------------------------------------

function rawBytes(a: Float32Array | Int8Array | Uint8Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)); // little-endian hosts, as raw_data is
}

function floatData(t: TensorProto): Float32Array {
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData); // aligned copy
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

export interface QuantizedModel {
  bytes: Uint8Array;
  plan: QuantizationPlan;
  /** Each quantised tensor's calibrated range and uint8 parameters. */
  activationParams: Record<string, QuantParams & { min: number; max: number }>;
}

/**
 * The QDQ model of `floatBytes` with activation ranges `ranges` (from calibrateRanges over the plan's
 * activations). `props` are added to the model's metadata.
 */
export function quantizeWithRanges(floatBytes: Uint8Array, plan: QuantizationPlan, ranges: Ranges, o: QuantizeOptions & { props?: Record<string, string> } = {}): QuantizedModel {
  const m = decodeModel(floatBytes);
  const g = m.graph!;
  const qmax = (o.reduceRange ?? true) ? WEIGHT_QMAX_REDUCED : WEIGHT_QMAX;
  const taken = new Set<string>([...(g.input ?? []).map((v) => v.name!), ...(g.initializer ?? []).map((t) => t.name!), ...(g.node ?? []).flatMap((n) => n.output ?? [])]);
  const unique = (base: string, pool = taken): string => {
    let name = base;
    for (let k = 1; pool.has(name); k++) name = `${base}_${k}`;
    pool.add(name);
    return name;
  };
  const newInit: TensorProto[] = [];
  const addInit = (base: string, dataType: number, dims: number[], data: Float32Array | Int8Array | Uint8Array | Int32Array): string => {
    const name = unique(base);
    newInit.push({ name, dataType, dims, rawData: rawBytes(data) });
    return name;
  };
  // Node names are optional in ONNX; the added nodes go without (the file stays small for small models).
  const makeNode = (op: string, input: string[], output: string[], axis?: number): NodeProto => ({
    opType: op, input, output,
    attribute: axis === undefined ? [] : [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: axis }],
  });

  // activations: one Q → DQ pair per tensor, every reader switched to the dequantised value
  const activationParams: QuantizedModel['activationParams'] = {};
  const pairs = new Map<string, NodeProto[]>(); // producer's output → its Q, DQ nodes
  const dequantized = new Map<string, string>();
  for (const t of plan.activations) {
    const r = ranges.get(t);
    if (!r) throw new QuantizationError(`no calibrated range for tensor '${t}'`);
    const p = activationQuantParams(r[0], r[1]);
    activationParams[t] = { ...p, min: r[0], max: r[1] };
    const scale = addInit(`${t}_s`, DT.FLOAT, [], Float32Array.of(p.scale));
    const zp = addInit(`${t}_zp`, DT.UINT8, [], Uint8Array.of(p.zeroPoint));
    const q = unique(`${t}_q`);
    const dq = unique(`${t}_dq`);
    pairs.set(t, [makeNode('QuantizeLinear', [t, scale, zp], [q]), makeNode('DequantizeLinear', [q, scale, zp], [dq])]);
    dequantized.set(t, dq);
  }

  // weights (and biases): int8 / int32 initialisers read through DequantizeLinear
  const init = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  const replaced = new Map<string, string>(); // float initialiser → its dequantised value
  const front: NodeProto[] = [];
  const weightScales = new Map<string, Float32Array>();
  for (const q of plan.weighted) {
    if (!replaced.has(q.weight)) {
      const t = init.get(q.weight)!;
      const dims = dimsOf(t);
      const { q: w8, scales } = quantizeWeightPerChannel(floatData(t), dims, q.axis, qmax);
      const wq = addInit(`${q.weight}_q`, DT.INT8, dims, w8);
      const ws = addInit(`${q.weight}_s`, DT.FLOAT, [scales.length], scales);
      const wz = q.op !== 'Gemm' ? undefined : addInit(`${q.weight}_zp`, DT.INT8, [scales.length], new Int8Array(scales.length));
      const out = unique(`${q.weight}_dq`);
      front.push(makeNode('DequantizeLinear', wz ? [wq, ws, wz] : [wq, ws], [out], q.axis));
      replaced.set(q.weight, out);
      weightScales.set(q.weight, scales);
    }
    const inputScale = activationParams[q.activation]?.scale;
    if (q.bias && inputScale !== undefined) {
      const t = init.get(q.bias)!;
      const { q: b32, scales } = quantizeBias(floatData(t), inputScale, weightScales.get(q.weight)!);
      const bq = addInit(`${q.bias}_q`, DT.INT32, [b32.length], b32);
      const bs = addInit(`${q.bias}_s`, DT.FLOAT, [scales.length], scales);
      const out = unique(`${q.bias}_dq`);
      front.push(makeNode('DequantizeLinear', [bq, bs], [out], 0));
      replaced.set(q.bias, out);
    }
  }

  // weight-only int8 constants: float initialisers of ≥ INT8_CONSTANT_MIN_VALUES values read only by Add
  if (o.int8Constants ?? true) {
    const readers = new Map<string, string[]>();
    for (const n of g.node ?? []) for (const i of n.input ?? []) readers.set(i, [...(readers.get(i) ?? []), n.opType!]);
    for (const t of g.initializer ?? []) {
      const name = t.name!;
      const dims = dimsOf(t);
      const n = dims.reduce((a, b) => a * b, 1);
      const ops = readers.get(name) ?? [];
      if (t.dataType !== DT.FLOAT || replaced.has(name) || n < INT8_CONSTANT_MIN_VALUES || ops.length === 0 || ops.some((op) => op !== 'Add')) continue;
      const perChannel = dims.length >= 2;
      const shape = perChannel ? dims : [1, n];
      const axis = perChannel ? dims.length - 1 : 0;
      const { q: c8, scales } = quantizeWeightPerChannel(floatData(t), shape, axis, WEIGHT_QMAX);
      const cq = addInit(`${name}_q`, DT.INT8, dims, c8);
      const cs = addInit(`${name}_s`, DT.FLOAT, perChannel ? [scales.length] : [], scales);
      const out = unique(`${name}_dq`);
      front.push(makeNode('DequantizeLinear', [cq, cs], [out], perChannel ? axis : undefined));
      replaced.set(name, out);
    }
  }

  // the new node list: weight DQs, graph-input pairs, then each node followed by its outputs' pairs
  const nodes: NodeProto[] = [...front];
  for (const v of g.input ?? []) nodes.push(...(pairs.get(v.name!) ?? []));
  for (const n of g.node ?? []) {
    n.input = (n.input ?? []).map((i) => dequantized.get(i) ?? replaced.get(i) ?? i);
    n.name = ''; // optional in ONNX: ~1.5 KB of a small ViT's file
    nodes.push(n);
    for (const out of n.output ?? []) nodes.push(...(pairs.get(out) ?? []));
  }
  // float initialisers nothing reads any more (the quantised weights) are dropped: that is the 4×
  const read = new Set(nodes.flatMap((n) => n.input ?? []));
  g.initializer = [...(g.initializer ?? []).filter((t) => read.has(t.name!)), ...newInit];
  g.node = nodes;
  const props = new Map((m.metadataProps ?? []).map((p) => [p.key!, p.value ?? '']));
  for (const [k, v] of Object.entries(o.props ?? {})) props.set(k, v);
  m.metadataProps = [...props].map(([key, value]) => ({ key, value }));
  return { bytes: onnx.ModelProto.encode(m).finish(), plan, activationParams };
}

/** Replaces (or adds) metadata_props of serialised model bytes. */
export function withMetadata(bytes: Uint8Array, props: Record<string, string>): Uint8Array {
  const m = decodeModel(bytes);
  const all = new Map((m.metadataProps ?? []).map((p) => [p.key!, p.value ?? '']));
  for (const [k, v] of Object.entries(props)) all.set(k, v);
  m.metadataProps = [...all].map(([key, value]) => ({ key, value }));
  return onnx.ModelProto.encode(m).finish();
}

/**
 * Plan, calibrate on `calibration` ([N, C, H, W] pixels in [0, 1]: synthetic images, calibration.ts)
 * and rewrite. The result is loaded in ONNX Runtime before it is returned (a graph ORT cannot load is
 * an error here, not a broken file later).
 */
export async function quantizeOnnxInt8(floatBytes: Uint8Array, calibration: Tensor, o: QuantizeOptions & { props?: Record<string, string> } = {}): Promise<QuantizedModel> {
  const plan = planQuantization(decodeModel(floatBytes), o);
  const ranges = await calibrateRanges(floatBytes, plan.activations, calibration, o);
  const q = quantizeWithRanges(floatBytes, plan, ranges, o);
  try {
    const loaded = await loadOnnx(q.bytes);
    await loaded.session.release();
  } catch (e) {
    throw new QuantizationError(`ONNX Runtime cannot load the int8 model: ${(e as Error).message}`);
  }
  return q;
}

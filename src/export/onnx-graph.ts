// Building ONNX graphs from TypeScript: an SSA graph of standard ONNX operators with the weights as
// initialisers, serialised with protobufjs through `onnx-proto` (code generated from the official
// onnx.proto, ONNX 1.10.2 / IR 8 schema: every field we write is unchanged in later IR versions).
//
// One builder for every exported family (ViT/DeiT, LeNet-5, CIFAR ResNets, detectors): the layer
// helpers (Linear, LayerNorm, GELU in its erf form, multi-head attention, Conv, BatchNorm, …) emit
// exactly the computation of the libtorch modules in src/nn, in the same order, so the exported
// model matches the libtorch one to float32 rounding.
import onnxProto from 'onnx-proto';
import type { Tensor } from '../tensor/tensor.js';

const { onnx } = onnxProto;
export { onnx };

/** Opsets the builder emits: 13 (Softmax over one axis, Split/Unsqueeze with inputs) up to 21. */
export const MIN_OPSET = 13;
export const MAX_OPSET = 21;
export const DEFAULT_OPSET = 17;

/** The IR version each opset of the default domain was released with (onnx/helper.py's VERSION_TABLE). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

/** A dimension of a graph input or output: a size, or a symbolic name ('batch'). */
export type Dim = number | string;

/**
 * Node attribute values. Plain numbers are INT attributes (they must be integers); floats are
 * given as `{ f: x }`, float lists as `{ floats: [...] }`, int lists as number arrays.
 */
export type AttrValue = number | number[] | string | { f: number } | { floats: number[] };

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`ONNX attribute ${name}: ${v} is not an integer (give floats as { f: x })`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) {
    if (!v.every(Number.isInteger)) throw new Error(`ONNX attribute ${name}: [${v.join(', ')}] are not all integers`);
    return { name, type: T.INTS, ints: v };
  }
  if ('f' in v) return { name, type: T.FLOAT, f: v.f };
  return { name, type: T.FLOATS, floats: v.floats };
}

function valueInfo(name: string, elemType: number, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  // The host is little-endian (x86-64, arm64), as ONNX's raw_data is.
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** Operators each emitted opset defines (the default domain), for the builder's own check. */
const KNOWN_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'MatMul', 'Gemm', 'Erf', 'Relu', 'Sigmoid', 'Softmax', 'Sqrt', 'Pow', 'ReduceMean',
  'LayerNormalization', 'Conv', 'MaxPool', 'GlobalAveragePool', 'BatchNormalization', 'Flatten', 'Reshape',
  'Transpose', 'Concat', 'Gather', 'Slice', 'Shape', 'Expand', 'Unsqueeze', 'Squeeze', 'Identity', 'Split', 'Cast',
  'Sin', 'Cos', 'Log', 'Clip', 'Pad',
]);

export interface ModelMetadata {
  producerVersion: string;
  docString?: string;
  /** Written as metadata_props (key → value); values must be strings. */
  props: Record<string, string>;
}

/**
 * An ONNX graph under construction. Node outputs get unique names; `node()` returns them. Inputs of
 * a node must already exist (a graph input, an initialiser or an earlier node's output), so nodes
 * are topologically sorted by construction; `check()` verifies that and the rest of what the ONNX
 * checker looks at before serialising.
 */
export class OnnxGraph {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly defined = new Set<string>();
  private counter = 0;
  private readonly constCache = new Map<string, string>();
  /** Initialisers made from a libtorch tensor: name → that tensor (a module applied twice shares them). */
  private readonly sources = new Map<string, Tensor>();

  constructor(readonly opset: number = DEFAULT_OPSET, readonly name = 'vit-dfkd') {
    if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
      throw new Error(`ONNX export: opset ${opset} is not supported (${MIN_OPSET}–${MAX_OPSET}; default ${DEFAULT_OPSET})`);
    }
  }

  /** A fresh value name `<base>_<n>`. */
  fresh(base: string): string {
    let n: string;
    do n = `${base}_${this.counter++}`;
    while (this.defined.has(n));
    return n;
  }

  private define(name: string): void {
    if (this.defined.has(name)) throw new Error(`ONNX export: value '${name}' is defined twice`);
    this.defined.add(name);
  }

  has(name: string): boolean {
    return this.defined.has(name);
  }

  addInput(name: string, dims: Dim[], elemType = FLOAT): string {
    this.define(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares `value` a graph output named `name` (through an Identity when the names differ). */
  addOutput(name: string, value: string, dims: Dim[], elemType = FLOAT): void {
    if (value !== name) this.node('Identity', [value], {}, { outputs: [name] });
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A float32 initialiser. */
  initFloat(name: string, data: Float32Array | readonly number[], dims: number[]): string {
    const a = data instanceof Float32Array ? data : Float32Array.from(data);
    const n = dims.reduce((x, y) => x * y, 1);
    if (a.length !== n) throw new Error(`ONNX export: initialiser '${name}' has ${a.length} values for shape [${dims.join(', ')}]`);
    this.define(name);
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: bytesOf(a) });
    return name;
  }

  /** An int64 initialiser (shapes, indices, axes). */
  initInt64(name: string, data: readonly number[], dims: number[] = [data.length]): string {
    this.define(name);
    this.initializers.push({ name, dims, dataType: INT64, rawData: bytesOf(BigInt64Array.from(data, (v) => BigInt(v))) });
    return name;
  }

  /** A shared constant: int64 vector (or scalar with `scalar`) / float scalar, one initialiser per value. */
  constInt64(values: readonly number[], scalar = false): string {
    const key = `i64:${scalar ? 's' : 'v'}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.initInt64(this.fresh(scalar ? `const_i${values[0]}` : 'const_shape'), values, scalar ? [] : [values.length]);
      this.constCache.set(key, name);
    }
    return name;
  }

  constFloat(value: number): string {
    const key = `f32:${value}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.initFloat(this.fresh('const_f'), [value], []);
      this.constCache.set(key, name);
    }
    return name;
  }

  /**
   * A libtorch tensor as an initialiser (float32, contiguous copy). Asking again for the same name
   * with the very same tensor (a module applied more than once, as DETR's heads at every decoder
   * layer) returns the existing initialiser; the same name for another tensor is an error.
   */
  weight(name: string, t: Tensor): string {
    if (this.sources.get(name) === t) return name;
    const f = t.dtype === 'float32' ? t.contiguous() : t.float().contiguous();
    try {
      this.initFloat(name, f.data() as Float32Array, f.shape);
      this.sources.set(name, t);
      return name;
    } finally {
      f.dispose();
    }
  }

  /** The transpose of a 2-D libtorch tensor (a Linear weight [out, in] → [in, out]) as an initialiser. */
  weightT(name: string, t: Tensor): string {
    if (this.sources.get(name) === t) return name;
    if (t.ndim !== 2) throw new Error(`ONNX export: ${name} is not a matrix`);
    const tt = t.t().float().contiguous();
    try {
      this.initFloat(name, tt.data() as Float32Array, tt.shape);
      this.sources.set(name, t);
      return name;
    } finally {
      tt.dispose();
    }
  }

  /** Adds a node; returns its output names (one by default, `nOut` or the given names otherwise). */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, o: { nOut?: number; outputs?: string[]; name?: string } = {}): string[] {
    if (!KNOWN_OPS.has(op)) throw new Error(`ONNX export: operator ${op} is not in the builder's list`);
    for (const i of inputs) {
      if (i !== '' && !this.defined.has(i)) throw new Error(`ONNX export: ${op} reads '${i}', which is not defined yet`);
    }
    const outputs = o.outputs ?? Array.from({ length: o.nOut ?? 1 }, () => this.fresh(op));
    for (const out of outputs) this.define(out);
    this.nodes.push({
      opType: op,
      name: o.name ?? this.fresh(`n_${op}`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** A single-output node. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(op, inputs, attrs)[0]!;
  }

  // ---- layers ------------------------------------------------------------------------------------

  /** torch.nn.Linear on inputs of any rank: MatMul with Wᵀ, then Add of the bias. */
  linear(x: string, name: string, w: Tensor, b: Tensor | null): string {
    const y = this.op('MatMul', [x, this.weightT(`${name}.weight_T`, w)]);
    return b ? this.op('Add', [y, this.weight(`${name}.bias`, b)]) : y;
  }

  /** torch.nn.Linear on [B, in]: one Gemm with transB (the weight stays in torch's [out, in] layout). */
  gemm(x: string, name: string, w: Tensor, b: Tensor | null): string {
    const inputs = [x, this.weight(`${name}.weight`, w)];
    if (b) inputs.push(this.weight(`${name}.bias`, b));
    return this.op('Gemm', inputs, { transB: 1 });
  }

  /** Mean over `axes` (attribute before opset 18, input from 18 on). */
  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    return this.opset >= 18
      ? this.op('ReduceMean', [x, this.constInt64(axes)], { keepdims: keepdims ? 1 : 0 })
      : this.op('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  /**
   * torch.nn.LayerNorm over the last axis: LayerNormalization from opset 17; before that its
   * definition spelled out (mean, biased variance, (x − μ) / √(σ² + ε) · γ + β).
   */
  layerNorm(x: string, name: string, w: Tensor | null, b: Tensor | null, eps: number, dim: number): string {
    const gamma = w ? this.weight(`${name}.weight`, w) : this.initFloat(`${name}.weight`, new Float32Array(dim).fill(1), [dim]);
    const beta = b ? this.weight(`${name}.bias`, b) : this.initFloat(`${name}.bias`, new Float32Array(dim), [dim]);
    if (this.opset >= 17) return this.op('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: { f: eps } });
    const mu = this.reduceMean(x, [-1], true);
    const d = this.op('Sub', [x, mu]);
    const v = this.reduceMean(this.op('Mul', [d, d]), [-1], true);
    const n = this.op('Div', [d, this.op('Sqrt', [this.op('Add', [v, this.constFloat(eps)])])]);
    return this.op('Add', [this.op('Mul', [n, gamma]), beta]);
  }

  /** GELU, exact (erf) form as torch's approximate='none': x · ½ · (1 + erf(x / √2)). */
  gelu(x: string): string {
    const e = this.op('Erf', [this.op('Div', [x, this.constFloat(Math.SQRT2)])]);
    return this.op('Mul', [this.op('Mul', [x, this.op('Add', [e, this.constFloat(1)])]), this.constFloat(0.5)]);
  }

  /** x[:, index] along `axis`, dropping that axis (Gather with a scalar index). */
  select(x: string, axis: number, index: number): string {
    return this.op('Gather', [x, this.constInt64([index], true)], { axis });
  }

  /** torch.clamp(x, lo, hi) with float bounds (Clip with min / max inputs, opset 11 on). */
  clip(x: string, lo: number, hi: number): string {
    return this.op('Clip', [x, this.constFloat(lo), this.constFloat(hi)]);
  }

  /** torch.unsqueeze at `axis` (axes as an input from opset 13). */
  unsqueeze(x: string, axis: number): string {
    return this.op('Unsqueeze', [x, this.constInt64([axis])]);
  }

  /** x[start:end] along `axis`. */
  slice(x: string, axis: number, start: number, end: number): string {
    return this.op('Slice', [x, this.constInt64([start]), this.constInt64([end]), this.constInt64([axis])]);
  }

  reshape(x: string, shape: number[]): string {
    return this.op('Reshape', [x, this.constInt64(shape)]);
  }

  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm });
  }

  /** The batch size of `x` as a 1-element int64 vector (for Expand shapes with a dynamic batch). */
  batchSizeOf(x: string): string {
    return this.op('Gather', [this.op('Shape', [x]), this.constInt64([0])], { axis: 0 });
  }

  /**
   * Scaled dot-product attention of src/nn/attention.ts and the ViT's Attention: softmax((q · scale) kᵀ) v
   * on [B, H, T, d] values, scale = d^-½ (q scaled before the product, as both modules do: pass the
   * module's own expression of it, `d ** -0.5` or `1 / √d`, for bit-level agreement). Returns the output
   * [B, H, Tq, d] and the attention weights [B, H, Tq, Tk]. `rank` 5: q, k, v [1, B, H, T, d] (one Split's outputs).
   */
  attention(q: string, k: string, v: string, scale: number, rank = 4): { out: string; weights: string } {
    const perm = Array.from({ length: rank }, (_, i) => (i < rank - 2 ? i : 2 * rank - 3 - i));
    const scores = this.op('MatMul', [this.op('Mul', [q, this.constFloat(scale)]), this.transpose(k, perm)]);
    const weights = this.op('Softmax', [scores], { axis: -1 });
    return { out: this.op('MatMul', [weights, v]), weights };
  }

  /** Convolution with torch's Conv2d options. */
  conv(x: string, name: string, w: Tensor, b: Tensor | null, o: { stride: number | [number, number]; padding: number | [number, number]; dilation?: number | [number, number]; groups?: number }): string {
    const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
    const [sh, sw] = pair(o.stride);
    const [ph, pw] = pair(o.padding);
    const [dh, dw] = pair(o.dilation ?? 1);
    const inputs = [x, this.weight(`${name}.weight`, w)];
    if (b) inputs.push(this.weight(`${name}.bias`, b));
    return this.op('Conv', inputs, {
      kernel_shape: [w.size(2), w.size(3)], strides: [sh, sw], pads: [ph, pw, ph, pw], dilations: [dh, dw], group: o.groups ?? 1,
    });
  }

  /** BatchNorm2d in inference mode (running statistics). */
  batchNorm(x: string, name: string, p: { weight: Tensor | null; bias: Tensor | null; runningMean: Tensor; runningVar: Tensor; eps: number; numFeatures: number }): string {
    const c = p.numFeatures;
    const scale = p.weight ? this.weight(`${name}.weight`, p.weight) : this.initFloat(`${name}.weight`, new Float32Array(c).fill(1), [c]);
    const bias = p.bias ? this.weight(`${name}.bias`, p.bias) : this.initFloat(`${name}.bias`, new Float32Array(c), [c]);
    return this.op('BatchNormalization', [x, scale, bias, this.weight(`${name}.running_mean`, p.runningMean), this.weight(`${name}.running_var`, p.runningVar)], {
      epsilon: { f: p.eps },
    });
  }

  // ---- checking and serialising --------------------------------------------------------------------

  /**
   * What the ONNX checker verifies structurally: unique value and node names, every node input
   * defined before use (topological order), every graph output produced, initialisers' sizes match
   * their shapes, only known operators. (Type and shape inference is left to the runtime that loads
   * the file; the tests load every exported family in ONNX Runtime.)
   */
  check(): void {
    const seen = new Set<string>();
    for (const i of this.inputs) seen.add(i.name!);
    for (const t of this.initializers) {
      if (seen.has(t.name!)) throw new Error(`ONNX check: '${t.name}' is both an input and an initialiser`);
      seen.add(t.name!);
      const n = (t.dims as number[]).reduce((a, b) => a * b, 1);
      const width = t.dataType === INT64 ? 8 : 4;
      if (t.rawData!.length !== n * width) throw new Error(`ONNX check: initialiser '${t.name}' has ${t.rawData!.length} bytes for ${n} values`);
    }
    const nodeNames = new Set<string>();
    for (const node of this.nodes) {
      if (nodeNames.has(node.name!)) throw new Error(`ONNX check: node name '${node.name}' is used twice`);
      nodeNames.add(node.name!);
      for (const i of node.input!) if (i !== '' && !seen.has(i)) throw new Error(`ONNX check: ${node.opType} '${node.name}' reads undefined '${i}'`);
      for (const o of node.output!) {
        if (seen.has(o)) throw new Error(`ONNX check: '${o}' is assigned twice`);
        seen.add(o);
      }
    }
    for (const o of this.outputs) if (!seen.has(o.name!)) throw new Error(`ONNX check: output '${o.name}' is never computed`);
    if (this.outputs.length === 0) throw new Error('ONNX check: the graph has no outputs');
  }

  /** The ModelProto of this graph. */
  model(meta: ModelMetadata): onnxProto.onnx.ModelProto {
    this.check();
    return onnx.ModelProto.create({
      irVersion: irVersionForOpset(this.opset),
      opsetImport: [{ domain: '', version: this.opset }],
      producerName: 'vit-dfkd',
      producerVersion: meta.producerVersion,
      docString: meta.docString ?? '',
      graph: { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
      metadataProps: Object.entries(meta.props).map(([key, value]) => ({ key, value })),
    });
  }

  /** Serialised bytes of the model. */
  serialize(meta: ModelMetadata): Uint8Array {
    return onnx.ModelProto.encode(this.model(meta)).finish();
  }
}

/** Decodes an ONNX file's bytes (for reading back metadata and inspecting exported graphs). */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`not an ONNX model: ${(e as Error).message}`);
  }
}

/** metadata_props of a decoded model as a plain object. */
export function metadataOf(model: onnxProto.onnx.IModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) out[p.key] = p.value ?? '';
  return out;
}

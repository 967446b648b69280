// The Tensor class: typed methods over one generic native call into libtorch's dispatcher.
//
// Names follow PyTorch (camelCased) so that a paper's PyTorch snippet translates line by line.
// Every method is a thin call of one ATen operator; autograd is libtorch's own.
import { native, type NativeHandle } from '../native/binding.js';

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type Shape = readonly number[];
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array | Uint16Array;
/** Reduction modes of the loss functions, as ATen numbers them. */
export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

// ---------------------------------------------------------------------------------------------
// Operator handles, resolved once per (name, overload) on first use.

type NativeArg = unknown;
class Op {
  private id = -1;
  constructor(readonly name: string, readonly overload = '') {}
  call(args: NativeArg[]): unknown {
    if (this.id < 0) this.id = native.opId(this.name, this.overload);
    return native.call(this.id, args);
  }
  /** For in-place operators: the result aliases an input, so no new handle is made. */
  run(args: NativeArg[]): void {
    if (this.id < 0) this.id = native.opId(this.name, this.overload);
    native.call(this.id, args, true);
  }
  t(args: NativeArg[]): Tensor {
    return new Tensor(this.call(args) as NativeHandle);
  }
  pair(args: NativeArg[]): [Tensor, Tensor] {
    const [a, b] = this.call(args) as [NativeHandle, NativeHandle];
    return [new Tensor(a), new Tensor(b)];
  }
  list(args: NativeArg[]): Tensor[] {
    return (this.call(args) as NativeHandle[]).map((h) => new Tensor(h));
  }
}

const ops = new Map<string, Op>();
/** The cached handle of one ATen operator, e.g. `op('aten::add', 'Tensor')`. */
export function op(name: string, overload = ''): Op {
  const key = `${name}.${overload}`;
  let o = ops.get(key);
  if (!o) {
    o = new Op(name, overload);
    ops.set(key, o);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Memory scopes (like tf.tidy): every tensor made inside is freed at exit, except what is returned
// or kept. Outside any scope, tensors live until dispose() or until V8 collects their handle: the
// handle's N-API finalizer then frees the tensor (the GC fallback). dispose() removes that finalizer,
// so a long synchronous loop queues nothing (see native/addon.cc for the measurement).

const scopes: Set<Tensor>[] = [];

function track(t: Tensor): void {
  const top = scopes[scopes.length - 1];
  if (top) top.add(t);
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) {
    out.add(value);
  } else if (depth < 6 && value !== null && typeof value === 'object') {
    if (Array.isArray(value)) {
      for (const v of value) collectTensors(v, out, depth + 1);
    } else if (value instanceof Map) {
      for (const v of value.values()) collectTensors(v, out, depth + 1);
    } else if (Object.getPrototypeOf(value) === Object.prototype) {
      for (const v of Object.values(value)) collectTensors(v, out, depth + 1);
    }
  }
}

/**
 * Runs `fn` and frees every tensor created during it, except those in its return value (tensors,
 * arrays, maps and plain objects of them) and those passed to `keep`. Returned tensors move to the
 * enclosing scope. Synchronous on purpose: an async callback would interleave with other scopes.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new Error('tidy: the callback returned a Promise; scopes must be synchronous');
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const t of scope) {
    if (!survivors.has(t)) t.dispose();
  }
  const parent = scopes[scopes.length - 1];
  // Only tensors this scope owned move up: a returned tensor made outside it (or kept) must not
  // become the parent's to dispose.
  if (parent) for (const t of survivors) if (scope.has(t)) parent.add(t);
  return result;
}

/** Exempts tensors from disposal by every open scope (e.g. parameters, running statistics). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/** Frees all tensors in a value (tensor, array, map or plain object of them). */
export function dispose(value: unknown): void {
  const set = new Set<Tensor>();
  collectTensors(value, set);
  for (const t of set) t.dispose();
}

/** Number of native tensor handles alive (not disposed and not yet collected). */
export function liveTensors(): number {
  return native.liveTensors();
}

// ---------------------------------------------------------------------------------------------
// Grad mode and inference mode

/** Runs `fn` with autograd recording off (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.isGradEnabled();
  native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs `fn` with autograd recording on (torch.enable_grad), e.g. inside a noGrad region. */
export function enableGrad<T>(fn: () => T): T {
  const prev = native.isGradEnabled();
  native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs `fn` in libtorch's InferenceMode: no autograd and no version counting, fastest for eval. */
export function inferenceMode<T>(fn: () => T): T {
  native.enterInferenceMode();
  try {
    return fn();
  } finally {
    native.exitInferenceMode();
  }
}

export const isGradEnabled = (): boolean => native.isGradEnabled();

// ---------------------------------------------------------------------------------------------
// Defaults and global state

let defaultDevice: Device = 'cpu';
/** Device used by the creation functions when none is given. */
export function setDefaultDevice(device: Device): void {
  if (device !== 'cpu' && !native.cudaAvailable()) {
    throw new Error(`device '${device}' requested but this libtorch has no CUDA (build against a CUDA LibTorch with LIBTORCH=...)`);
  }
  defaultDevice = device;
}
export const getDefaultDevice = (): Device => defaultDevice;
export const manualSeed = (seed: number): void => native.manualSeed(seed);
export const setNumThreads = (n: number): void => native.setNumThreads(n);
export const getNumThreads = (): number => native.getNumThreads();
export const cudaAvailable = (): boolean => native.cudaAvailable();
export const cudaDeviceCount = (): number => native.cudaDeviceCount();

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

function created(t: Tensor, o?: CreateOptions): Tensor {
  if (o?.requiresGrad) t.requiresGrad = true;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Untyped access: any operator the dispatcher knows, so a missing typed method never blocks work.

function unwrapArg(a: unknown): unknown {
  if (a instanceof Tensor) return a.handle;
  if (Array.isArray(a) && a.some((x) => x instanceof Tensor || x === null)) return a.map(unwrapArg);
  return a;
}

function wrapResult(r: unknown): unknown {
  if (r !== null && typeof r === 'object' && !Array.isArray(r)) return new Tensor(r as NativeHandle);
  if (Array.isArray(r)) return r.map(wrapResult);
  return r;
}

/**
 * Calls any ATen operator by name: `callOp('aten::hardswish', null, [x])`. With a null overload the
 * first overload whose schema accepts the arguments is used. Keyword arguments go in `kwargs`.
 */
export function callOp(name: string, overload: string | null, args: unknown[], kwargs?: Record<string, unknown>): unknown {
  const kw = kwargs ? Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, unwrapArg(v)])) : undefined;
  return wrapResult(native.callByName(name, overload, args.map(unwrapArg), kw));
}

export const listOps = (): string[] => native.listOps();
export const schemaOf = (name: string, overload = ''): string => native.schema(name, overload);

// ---------------------------------------------------------------------------------------------

type Scalar = number | boolean;
type TensorOrScalar = Tensor | number;

function normDim(dim: number | readonly number[] | undefined): number[] | undefined {
  if (dim === undefined) return undefined;
  return typeof dim === 'number' ? [dim] : [...dim];
}

export class Tensor {
  #h: NativeHandle | null;

  /** Wraps a native handle. Library code only; users create tensors with the factory functions. */
  constructor(handle: NativeHandle) {
    this.#h = handle;
    track(this);
  }

  get handle(): NativeHandle {
    if (this.#h === null) throw new Error('tensor was disposed');
    return this.#h;
  }

  // ---- metadata ------------------------------------------------------------------------------
  get shape(): number[] { return native.shape(this.handle); }
  get dtype(): DType { return native.dtype(this.handle) as DType; }
  get device(): Device { return native.device(this.handle) as Device; }
  get ndim(): number { return this.shape.length; }
  numel(): number { return native.numel(this.handle); }
  size(dim: number): number {
    const s = this.shape;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size: dim ${dim} out of range for a ${s.length}-d tensor`);
    return s[d]!;
  }
  get isDisposed(): boolean { return this.#h === null; }
  get isLeaf(): boolean { return native.isLeaf(this.handle); }
  /** True for tensors made in inferenceMode (they cannot enter autograd later). */
  get isInference(): boolean { return native.isInference(this.handle); }
  get gradFn(): string | null { return native.gradFn(this.handle); }
  isSame(other: Tensor): boolean { return native.isSame(this.handle, other.handle); }

  toString(): string {
    if (this.#h === null) return 'Tensor(disposed)';
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }

  /** Frees the native tensor now. Autograd graphs that hold it keep their own reference. */
  dispose(): void {
    if (this.#h === null) return;
    native.dispose(this.#h);
    this.#h = null;
  }

  // ---- data ---------------------------------------------------------------------------------
  /** The values as a typed array (a copy; float16/bfloat16 come as raw Uint16 bits). */
  data(): TypedArray { return native.toTypedArray(this.handle); }
  /** The values as plain numbers (flattened, row-major). */
  toArray(): number[] {
    const dt = this.dtype;
    if (dt === 'float16' || dt === 'bfloat16') {
      // data() gives raw Uint16 bits for these; widen so the numbers are the values
      const wide = op('aten::_to_copy').t([this.handle, 'float32']);
      try {
        return Array.from(wide.data() as Float32Array);
      } finally {
        wide.dispose();
      }
    }
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, (x) => Number(x)) : Array.from(d as ArrayLike<number>);
  }
  /** The value of a one-element tensor. */
  item(): number { return native.item(this.handle); }

  // ---- autograd -----------------------------------------------------------------------------
  get requiresGrad(): boolean { return native.requiresGrad(this.handle); }
  set requiresGrad(v: boolean) { native.setRequiresGrad(this.handle, v); }
  requiresGrad_(v = true): this { native.setRequiresGrad(this.handle, v); return this; }
  /** The accumulated gradient (a new handle on the same tensor each call; dispose it when done). */
  get grad(): Tensor | null {
    const g = native.getGrad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) { native.setGrad(this.handle, g === null ? null : g.handle); }
  retainGrad(): this { native.retainGrad(this.handle); return this; }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward([this.handle], gradient ? [gradient.handle] : null, opts.retainGraph, opts.createGraph ?? false);
  }
  detach(): Tensor { return op('aten::detach').t([this.handle]); }
  detach_(): this { op('aten::detach_').run([this.handle]); return this; }

  // ---- conversion ---------------------------------------------------------------------------
  to(target: DType | Device | { dtype?: DType; device?: Device }, copy = false): Tensor {
    let dtype: DType | undefined;
    let device: Device | undefined;
    if (typeof target === 'string') {
      if (target === 'cpu' || target.startsWith('cuda')) device = target as Device;
      else dtype = target as DType;
    } else {
      ({ dtype, device } = target);
    }
    return op('aten::to', 'dtype_layout').t([this.handle, dtype, undefined, device, undefined, false, copy]);
  }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  bool(): Tensor { return this.to('bool'); }
  cpu(): Tensor { return this.to('cpu'); }
  clone(): Tensor { return op('aten::clone').t([this.handle]); }
  contiguous(): Tensor { return op('aten::contiguous').t([this.handle]); }

  // ---- elementwise arithmetic (broadcasting; numbers are Scalars) ---------------------------
  add(other: TensorOrScalar, alpha: number = 1): Tensor {
    return typeof other === 'number'
      ? op('aten::add', 'Scalar').t([this.handle, other, alpha])
      : op('aten::add', 'Tensor').t([this.handle, other.handle, alpha]);
  }
  sub(other: TensorOrScalar, alpha: number = 1): Tensor {
    return typeof other === 'number'
      ? op('aten::sub', 'Scalar').t([this.handle, other, alpha])
      : op('aten::sub', 'Tensor').t([this.handle, other.handle, alpha]);
  }
  /** other − this (torch.rsub), for `1 - x` with a scalar. */
  rsub(other: number): Tensor { return op('aten::rsub', 'Scalar').t([this.handle, other]); }
  mul(other: TensorOrScalar): Tensor {
    return typeof other === 'number'
      ? op('aten::mul', 'Scalar').t([this.handle, other])
      : op('aten::mul', 'Tensor').t([this.handle, other.handle]);
  }
  div(other: TensorOrScalar, roundingMode?: 'trunc' | 'floor'): Tensor {
    if (roundingMode) {
      return typeof other === 'number'
        ? op('aten::div', 'Scalar_mode').t([this.handle, other, roundingMode])
        : op('aten::div', 'Tensor_mode').t([this.handle, other.handle, roundingMode]);
    }
    return typeof other === 'number'
      ? op('aten::div', 'Scalar').t([this.handle, other])
      : op('aten::div', 'Tensor').t([this.handle, other.handle]);
  }
  remainder(other: TensorOrScalar): Tensor {
    return typeof other === 'number'
      ? op('aten::remainder', 'Scalar').t([this.handle, other])
      : op('aten::remainder', 'Tensor').t([this.handle, other.handle]);
  }
  pow(exponent: TensorOrScalar): Tensor {
    return typeof exponent === 'number'
      ? op('aten::pow', 'Tensor_Scalar').t([this.handle, exponent])
      : op('aten::pow', 'Tensor_Tensor').t([this.handle, exponent.handle]);
  }
  maximum(other: Tensor): Tensor { return op('aten::maximum').t([this.handle, other.handle]); }
  minimum(other: Tensor): Tensor { return op('aten::minimum').t([this.handle, other.handle]); }
  neg(): Tensor { return op('aten::neg').t([this.handle]); }
  abs(): Tensor { return op('aten::abs').t([this.handle]); }
  exp(): Tensor { return op('aten::exp').t([this.handle]); }
  log(): Tensor { return op('aten::log').t([this.handle]); }
  log1p(): Tensor { return op('aten::log1p').t([this.handle]); }
  sqrt(): Tensor { return op('aten::sqrt').t([this.handle]); }
  rsqrt(): Tensor { return op('aten::rsqrt').t([this.handle]); }
  square(): Tensor { return op('aten::square').t([this.handle]); }
  reciprocal(): Tensor { return op('aten::reciprocal').t([this.handle]); }
  sign(): Tensor { return op('aten::sign').t([this.handle]); }
  floor(): Tensor { return op('aten::floor').t([this.handle]); }
  ceil(): Tensor { return op('aten::ceil').t([this.handle]); }
  round(): Tensor { return op('aten::round').t([this.handle]); }
  sin(): Tensor { return op('aten::sin').t([this.handle]); }
  cos(): Tensor { return op('aten::cos').t([this.handle]); }
  erf(): Tensor { return op('aten::erf').t([this.handle]); }
  tanh(): Tensor { return op('aten::tanh').t([this.handle]); }
  sigmoid(): Tensor { return op('aten::sigmoid').t([this.handle]); }
  relu(): Tensor { return op('aten::relu').t([this.handle]); }
  leakyRelu(negativeSlope = 0.01): Tensor { return op('aten::leaky_relu').t([this.handle, negativeSlope]); }
  /** GELU; 'none' is the exact erf form (timm's default), 'tanh' the approximation. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor { return op('aten::gelu').t([this.handle, approximate]); }
  silu(): Tensor { return op('aten::silu').t([this.handle]); }
  softplus(beta = 1, threshold = 20): Tensor { return op('aten::softplus').t([this.handle, beta, threshold]); }
  clamp(min?: number | null, max?: number | null): Tensor { return op('aten::clamp').t([this.handle, min ?? null, max ?? null]); }
  clampMin(min: number): Tensor { return this.clamp(min, null); }
  clampMax(max: number): Tensor { return this.clamp(null, max); }
  isnan(): Tensor { return op('aten::isnan').t([this.handle]); }
  isfinite(): Tensor { return op('aten::isfinite').t([this.handle]); }
  /** The elementwise lerp this + weight·(end − this). */
  lerp(end: Tensor, weight: number): Tensor { return op('aten::lerp', 'Scalar').t([this.handle, end.handle, weight]); }

  // ---- in-place (for optimisers, initialisers and buffers; wrap in noGrad for parameters) ----
  add_(other: TensorOrScalar, alpha: number = 1): this {
    if (typeof other === 'number') op('aten::add_', 'Scalar').run([this.handle, other, alpha]);
    else op('aten::add_', 'Tensor').run([this.handle, other.handle, alpha]);
    return this;
  }
  sub_(other: TensorOrScalar, alpha: number = 1): this {
    if (typeof other === 'number') op('aten::sub_', 'Scalar').run([this.handle, other, alpha]);
    else op('aten::sub_', 'Tensor').run([this.handle, other.handle, alpha]);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    if (typeof other === 'number') op('aten::mul_', 'Scalar').run([this.handle, other]);
    else op('aten::mul_', 'Tensor').run([this.handle, other.handle]);
    return this;
  }
  div_(other: TensorOrScalar): this {
    if (typeof other === 'number') op('aten::div_', 'Scalar').run([this.handle, other]);
    else op('aten::div_', 'Tensor').run([this.handle, other.handle]);
    return this;
  }
  /** this += value · t1 · t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this { op('aten::addcmul_').run([this.handle, t1.handle, t2.handle, value]); return this; }
  /** this += value · t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this { op('aten::addcdiv_').run([this.handle, t1.handle, t2.handle, value]); return this; }
  lerp_(end: Tensor, weight: number): this { op('aten::lerp_', 'Scalar').run([this.handle, end.handle, weight]); return this; }
  sqrt_(): this { op('aten::sqrt_').run([this.handle]); return this; }
  clamp_(min?: number | null, max?: number | null): this { op('aten::clamp_').run([this.handle, min ?? null, max ?? null]); return this; }
  zero_(): this { op('aten::zero_').run([this.handle]); return this; }
  fill_(value: Scalar): this { op('aten::fill_', 'Scalar').run([this.handle, value]); return this; }
  copy_(src: Tensor): this { op('aten::copy_').run([this.handle, src.handle]); return this; }
  normal_(mean = 0, std = 1): this { op('aten::normal_').run([this.handle, mean, std]); return this; }
  uniform_(from = 0, to = 1): this { op('aten::uniform_').run([this.handle, from, to]); return this; }
  erfinv_(): this { op('aten::erfinv_').run([this.handle]); return this; }
  maskedFill_(mask: Tensor, value: number): this { op('aten::masked_fill_', 'Scalar').run([this.handle, mask.handle, value]); return this; }

  // ---- comparisons and logic ----------------------------------------------------------------
  private cmp(name: string, other: TensorOrScalar): Tensor {
    return typeof other === 'number' ? op(name, 'Scalar').t([this.handle, other]) : op(name, 'Tensor').t([this.handle, other.handle]);
  }
  eq(other: TensorOrScalar): Tensor { return this.cmp('aten::eq', other); }
  ne(other: TensorOrScalar): Tensor { return this.cmp('aten::ne', other); }
  lt(other: TensorOrScalar): Tensor { return this.cmp('aten::lt', other); }
  le(other: TensorOrScalar): Tensor { return this.cmp('aten::le', other); }
  gt(other: TensorOrScalar): Tensor { return this.cmp('aten::gt', other); }
  ge(other: TensorOrScalar): Tensor { return this.cmp('aten::ge', other); }
  logicalAnd(other: Tensor): Tensor { return op('aten::logical_and').t([this.handle, other.handle]); }
  logicalOr(other: Tensor): Tensor { return op('aten::logical_or').t([this.handle, other.handle]); }
  logicalNot(): Tensor { return op('aten::logical_not').t([this.handle]); }
  any(): Tensor { return op('aten::any').t([this.handle]); }
  all(): Tensor { return op('aten::all').t([this.handle]); }
  /** where(condition, this, other) */
  maskedFill(mask: Tensor, value: number): Tensor { return op('aten::masked_fill', 'Scalar').t([this.handle, mask.handle, value]); }

  // ---- reductions ---------------------------------------------------------------------------
  sum(dim?: number | readonly number[], keepdim = false): Tensor {
    return dim === undefined ? op('aten::sum').t([this.handle]) : op('aten::sum', 'dim_IntList').t([this.handle, normDim(dim), keepdim]);
  }
  mean(dim?: number | readonly number[], keepdim = false): Tensor {
    return dim === undefined ? op('aten::mean').t([this.handle]) : op('aten::mean', 'dim').t([this.handle, normDim(dim), keepdim]);
  }
  /** Variance with Bessel's correction by default (`correction` 1), as torch.var. */
  var(dim?: number | readonly number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return op('aten::var', 'correction').t([this.handle, normDim(dim) ?? null, opts.correction ?? 1, opts.keepdim ?? false]);
  }
  std(dim?: number | readonly number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return op('aten::std', 'correction').t([this.handle, normDim(dim) ?? null, opts.correction ?? 1, opts.keepdim ?? false]);
  }
  prod(): Tensor { return op('aten::prod').t([this.handle]); }
  /** Maximum of all elements. */
  max(): Tensor { return op('aten::max').t([this.handle]); }
  min(): Tensor { return op('aten::min').t([this.handle]); }
  /** Maximum along a dimension: values and their indices. */
  maxDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = op('aten::max', 'dim').pair([this.handle, dim, keepdim]);
    return { values, indices };
  }
  minDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = op('aten::min', 'dim').pair([this.handle, dim, keepdim]);
    return { values, indices };
  }
  amax(dim: number | readonly number[], keepdim = false): Tensor { return op('aten::amax').t([this.handle, normDim(dim), keepdim]); }
  amin(dim: number | readonly number[], keepdim = false): Tensor { return op('aten::amin').t([this.handle, normDim(dim), keepdim]); }
  argmax(dim?: number, keepdim = false): Tensor { return op('aten::argmax').t([this.handle, dim ?? null, keepdim]); }
  argmin(dim?: number, keepdim = false): Tensor { return op('aten::argmin').t([this.handle, dim ?? null, keepdim]); }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = op('aten::topk').pair([this.handle, k, dim, largest, sorted]);
    return { values, indices };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = op('aten::sort').pair([this.handle, dim, descending]);
    return { values, indices };
  }
  logsumexp(dim: number | readonly number[], keepdim = false): Tensor { return op('aten::logsumexp').t([this.handle, normDim(dim), keepdim]); }
  /** The p-norm over all elements, or over `dim`. */
  norm(p = 2, dim?: number | readonly number[], keepdim = false): Tensor {
    return dim === undefined
      ? op('aten::norm', 'Scalar').t([this.handle, p])
      : op('aten::norm', 'ScalarOpt_dim').t([this.handle, p, normDim(dim), keepdim]);
  }
  cumsum(dim: number): Tensor { return op('aten::cumsum').t([this.handle, dim]); }

  // ---- shape --------------------------------------------------------------------------------
  reshape(shape: Shape): Tensor { return op('aten::reshape').t([this.handle, shape]); }
  view(shape: Shape): Tensor { return op('aten::view').t([this.handle, shape]); }
  permute(dims: Shape): Tensor { return op('aten::permute').t([this.handle, dims]); }
  transpose(dim0: number, dim1: number): Tensor { return op('aten::transpose', 'int').t([this.handle, dim0, dim1]); }
  /** Transpose of a 2-D tensor. */
  t(): Tensor { return op('aten::t').t([this.handle]); }
  flatten(startDim = 0, endDim = -1): Tensor { return op('aten::flatten', 'using_ints').t([this.handle, startDim, endDim]); }
  unflatten(dim: number, sizes: Shape): Tensor { return op('aten::unflatten', 'int').t([this.handle, dim, sizes]); }
  squeeze(dim?: number): Tensor {
    return dim === undefined ? op('aten::squeeze').t([this.handle]) : op('aten::squeeze', 'dim').t([this.handle, dim]);
  }
  unsqueeze(dim: number): Tensor { return op('aten::unsqueeze').t([this.handle, dim]); }
  expand(shape: Shape): Tensor { return op('aten::expand').t([this.handle, shape]); }
  expandAs(other: Tensor): Tensor { return this.expand(other.shape); }
  repeat(repeats: Shape): Tensor { return op('aten::repeat').t([this.handle, repeats]); }
  /** Elements [start, end) with `step` along `dim` (a view; negative indices count from the end). */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    return op('aten::slice', 'Tensor').t([this.handle, dim, start ?? null, end ?? null, step]);
  }
  narrow(dim: number, start: number, length: number): Tensor { return op('aten::narrow').t([this.handle, dim, start, length]); }
  /** The sub-tensor at `index` along `dim` (that dimension removed). */
  select(dim: number, index: number): Tensor { return op('aten::select', 'int').t([this.handle, dim, index]); }
  indexSelect(dim: number, index: Tensor): Tensor { return op('aten::index_select').t([this.handle, dim, index.handle]); }
  /** Advanced indexing x[i0, i1, ...] with index tensors (null = the whole dimension). */
  index(indices: (Tensor | null)[]): Tensor {
    return op('aten::index', 'Tensor').t([this.handle, indices.map((i) => (i === null ? null : i.handle))]);
  }
  gather(dim: number, index: Tensor): Tensor { return op('aten::gather').t([this.handle, dim, index.handle]); }
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    return typeof src === 'number'
      ? op('aten::scatter', 'value').t([this.handle, dim, index.handle, src])
      : op('aten::scatter', 'src').t([this.handle, dim, index.handle, src.handle]);
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return op('aten::scatter_add').t([this.handle, dim, index.handle, src.handle]); }
  split(sizeOrSizes: number | readonly number[], dim = 0): Tensor[] {
    return typeof sizeOrSizes === 'number'
      ? op('aten::split', 'Tensor').list([this.handle, sizeOrSizes, dim])
      : op('aten::split', 'sizes').list([this.handle, sizeOrSizes, dim]);
  }
  chunk(chunks: number, dim = 0): Tensor[] { return op('aten::chunk').list([this.handle, chunks, dim]); }
  unbind(dim = 0): Tensor[] { return op('aten::unbind', 'int').list([this.handle, dim]); }
  roll(shifts: number | readonly number[], dims: number | readonly number[]): Tensor {
    return op('aten::roll').t([this.handle, normDim(shifts), normDim(dims)]);
  }
  flip(dims: number | readonly number[]): Tensor { return op('aten::flip').t([this.handle, normDim(dims)]); }
  tril(diagonal = 0): Tensor { return op('aten::tril').t([this.handle, diagonal]); }
  triu(diagonal = 0): Tensor { return op('aten::triu').t([this.handle, diagonal]); }

  // ---- linear algebra -----------------------------------------------------------------------
  matmul(other: Tensor): Tensor { return op('aten::matmul').t([this.handle, other.handle]); }
  bmm(other: Tensor): Tensor { return op('aten::bmm').t([this.handle, other.handle]); }
  mm(other: Tensor): Tensor { return op('aten::mm').t([this.handle, other.handle]); }

  // ---- neural-network functions as methods (the functional module has the rest) -------------
  softmax(dim: number): Tensor { return op('aten::softmax', 'int').t([this.handle, dim]); }
  logSoftmax(dim: number): Tensor { return op('aten::log_softmax', 'int').t([this.handle, dim]); }
  oneHot(numClasses: number): Tensor { return op('aten::one_hot').t([this.handle, numClasses]); }
}

// ---------------------------------------------------------------------------------------------
// Creation

function shapeOf(nested: unknown): number[] {
  const shape: number[] = [];
  let cur = nested;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

/**
 * A tensor from numbers: nested arrays (shape inferred), a flat array with `shape`, or a typed
 * array (its element type gives the dtype unless `dtype` is set). Values are copied.
 */
export function tensor(values: number | boolean | unknown[] | TypedArray, opts: CreateOptions & { shape?: Shape } = {}): Tensor {
  let t: Tensor;
  if (ArrayBuffer.isView(values)) {
    const shape = opts.shape ?? [values.length];
    t = new Tensor(native.fromTypedArray(values, shape, opts.dtype));
  } else {
    const shape = opts.shape ?? (typeof values === 'number' || typeof values === 'boolean' ? [] : shapeOf(values));
    const flat = typeof values === 'number' || typeof values === 'boolean' ? [values] : (values as unknown[]).flat(Infinity);
    const dtype = opts.dtype ?? (typeof flat[0] === 'boolean' ? 'bool' : 'float32');
    const numbers = flat.map((v) => Number(v));
    const expected = shape.reduce((a, b) => a * b, 1);
    if (numbers.length !== expected) {
      throw new RangeError(`tensor: ${numbers.length} values do not fill shape [${shape.join(', ')}] (ragged nested array?)`);
    }
    let src: TypedArray;
    if (dtype === 'float64') src = Float64Array.from(numbers);
    else if (dtype === 'int64') src = BigInt64Array.from(numbers, (v) => BigInt(Math.trunc(v)));
    else if (dtype === 'int32') src = Int32Array.from(numbers);
    else if (dtype === 'bool') src = Uint8Array.from(numbers, (v) => (v !== 0 ? 1 : 0)); // bytes are reinterpreted: only 0/1 are valid bools
    else if (dtype === 'uint8') src = Uint8Array.from(numbers);
    else src = Float32Array.from(numbers);
    t = new Tensor(native.fromTypedArray(src, shape, dtype));
  }
  if (opts.device && opts.device !== 'cpu') {
    const moved = t.to(opts.device);
    t.dispose();
    t = moved;
  }
  return created(t, opts);
}

const dev = (o?: CreateOptions): Device | undefined => o?.device ?? (defaultDevice === 'cpu' ? undefined : defaultDevice);

export function zeros(shape: Shape, o?: CreateOptions): Tensor { return created(op('aten::zeros').t([shape, o?.dtype, undefined, dev(o)]), o); }
export function ones(shape: Shape, o?: CreateOptions): Tensor { return created(op('aten::ones').t([shape, o?.dtype, undefined, dev(o)]), o); }
export function empty(shape: Shape, o?: CreateOptions): Tensor { return created(op('aten::empty', 'memory_format').t([shape, o?.dtype, undefined, dev(o)]), o); }
export function full(shape: Shape, value: Scalar, o?: CreateOptions): Tensor {
  return created(op('aten::full').t([shape, value, o?.dtype ?? (typeof value === 'boolean' ? 'bool' : 'float32'), undefined, dev(o)]), o);
}
/** Standard normal samples. */
export function randn(shape: Shape, o?: CreateOptions): Tensor { return created(op('aten::randn').t([shape, o?.dtype, undefined, dev(o)]), o); }
/** Uniform samples in [0, 1). */
export function rand(shape: Shape, o?: CreateOptions): Tensor { return created(op('aten::rand').t([shape, o?.dtype, undefined, dev(o)]), o); }
/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: Shape, o?: CreateOptions): Tensor {
  return created(op('aten::randint', 'low').t([low, high, shape, o?.dtype ?? 'int64', undefined, dev(o)]), o);
}
/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, o?: CreateOptions): Tensor { return op('aten::randperm').t([n, o?.dtype ?? 'int64', undefined, dev(o)]); }
/** [start, end) with `step`; integral arguments give int64 as in PyTorch. */
export function arange(start: number, end?: number, step = 1, o?: CreateOptions): Tensor {
  if (end === undefined) return created(op('aten::arange').t([start, o?.dtype, undefined, dev(o)]), o);
  return created(op('aten::arange', 'start_step').t([start, end, step, o?.dtype, undefined, dev(o)]), o);
}
export function linspace(start: number, end: number, steps: number, o?: CreateOptions): Tensor {
  return created(op('aten::linspace').t([start, end, steps, o?.dtype, undefined, dev(o)]), o);
}
export function eye(n: number, m?: number, o?: CreateOptions): Tensor {
  return created(op('aten::eye', 'm').t([n, m ?? n, o?.dtype, undefined, dev(o)]), o);
}
export function zerosLike(t: Tensor, o?: CreateOptions): Tensor { return created(op('aten::zeros_like').t([t.handle, o?.dtype, undefined, o?.device]), o); }
export function onesLike(t: Tensor, o?: CreateOptions): Tensor { return created(op('aten::ones_like').t([t.handle, o?.dtype, undefined, o?.device]), o); }
export function randnLike(t: Tensor, o?: CreateOptions): Tensor { return created(op('aten::randn_like').t([t.handle, o?.dtype, undefined, o?.device]), o); }
export function fullLike(t: Tensor, value: Scalar, o?: CreateOptions): Tensor {
  return created(op('aten::full_like').t([t.handle, value, o?.dtype, undefined, o?.device]), o);
}

// ---------------------------------------------------------------------------------------------
// Functions of several tensors

export function cat(tensors: readonly Tensor[], dim = 0): Tensor { return op('aten::cat').t([tensors.map((t) => t.handle), dim]); }
export function stack(tensors: readonly Tensor[], dim = 0): Tensor { return op('aten::stack').t([tensors.map((t) => t.handle), dim]); }
/** Elementwise choice: `a` where `condition` is true, else `b`. */
export function where(condition: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  if (typeof a === 'number' && typeof b === 'number') return op('aten::where', 'Scalar').t([condition.handle, a, b]);
  if (typeof a === 'number') return op('aten::where', 'ScalarSelf').t([condition.handle, a, (b as Tensor).handle]);
  if (typeof b === 'number') return op('aten::where', 'ScalarOther').t([condition.handle, a.handle, b]);
  return op('aten::where', 'self').t([condition.handle, a.handle, b.handle]);
}

/** Gradients of `outputs` with respect to `inputs` (torch.autograd.grad). */
export function grad(
  outputs: Tensor | readonly Tensor[],
  inputs: readonly Tensor[],
  opts: { gradOutputs?: (Tensor | null)[]; retainGraph?: boolean; createGraph?: boolean; allowUnused?: boolean } = {},
): (Tensor | null)[] {
  const outs = outputs instanceof Tensor ? [outputs] : outputs;
  const res = native.grad(
    outs.map((t) => t.handle),
    inputs.map((t) => t.handle),
    opts.gradOutputs ? opts.gradOutputs.map((g) => (g === null ? null : g.handle)) : null,
    opts.retainGraph,
    opts.createGraph ?? false,
    opts.allowUnused ?? false,
  );
  return res.map((h) => (h === null ? null : new Tensor(h)));
}

/** Backward through several roots at once (torch.autograd.backward). */
export function backward(tensors: readonly Tensor[], grads?: (Tensor | null)[], opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
  native.backward(tensors.map((t) => t.handle), grads ? grads.map((g) => (g === null ? null : g.handle)) : null, opts.retainGraph, opts.createGraph ?? false);
}

export { REDUCTION };

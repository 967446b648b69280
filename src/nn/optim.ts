// Optimisers in the shape of torch.optim, so a PyTorch training snippet translates line by line:
//
//   PyTorch                                            here
//   opt = torch.optim.AdamW(model.parameters(),        const opt = new AdamW(model.parameters(),
//           lr=1e-3, weight_decay=0.05)                    { lr: 1e-3, weightDecay: 0.05 });
//   opt.zero_grad(); loss.backward(); opt.step()       opt.zeroGrad(); loss.backward(); opt.step();
//   opt.param_groups[0]['lr'] = 1e-4                   opt.paramGroups[0].lr = 1e-4;
//
// Every update is a handful of libtorch in-place operators per parameter (never a JavaScript loop over
// elements), run under noGrad and inside a tidy scope so the temporaries are freed at once. The
// per-parameter state tensors (exp_avg, ...) are kept out of every scope and live until the optimiser
// is disposed or the state is replaced by loadStateDict.
//
// The update rules are torch.optim's single-tensor ("for-loop") implementations, written in the same
// order with the same scalar arithmetic (scalars are float64 JavaScript numbers, as Python floats),
// so trajectories agree with PyTorch's CPU defaults up to libm differences in `beta ** step`.
import { Tensor, keep, noGrad, tidy, zerosLike } from '../tensor/tensor.js';

// ---------------------------------------------------------------------------------------------
// Types

/** A group of parameters with optional hyper-parameter overrides (torch's param_groups entries). */
export interface ParamGroup {
  params: Tensor[];
  lr?: number;
  weightDecay?: number;
  /** Multiplies the scheduled learning rate of this group (timm's `lr_scale`, e.g. layer-wise decay). */
  lrScale?: number;
  [k: string]: unknown;
}

/** Hyper-parameters every optimiser has. */
export interface BaseHyper {
  lr: number;
  weightDecay: number;
}

/** A param group after defaults were filled in: every hyper-parameter is present. */
export type ResolvedGroup<H extends BaseHyper = BaseHyper> = H & { params: Tensor[]; lrScale?: number; [k: string]: unknown };

/** The state an optimiser keeps for one parameter. */
export interface ParamState {
  /** Number of updates this parameter has received (torch's `state[p]['step']`). */
  step: number;
  /** State tensors by torch's names (`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `momentum_buffer`). */
  buffers: Record<string, Tensor>;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The JSON half of a state dict: hyper-parameters per group and step counts per parameter. */
export interface OptimizerMeta {
  /** 'SGD' | 'Adam' | 'AdamW' (a state dict only loads into an optimiser of the same kind). */
  optimizer: string;
  version: 1;
  /** Each group's hyper-parameters, with `params` the global indices of its parameters. */
  paramGroups: ({ params: number[] } & { [k: string]: Json })[];
  /** Step count per parameter index, for every parameter that has state. */
  steps: Record<string, number>;
}

/**
 * A checkpointable optimiser state: tensors named `"<paramIndex>.<buffer>"` (e.g. `"3.exp_avg"`,
 * parameter indices count through the groups in order, as torch's state_dict) for a safetensors file,
 * and a JSON-serialisable `meta` (e.g. for the file's `__metadata__`).
 */
export interface OptimizerState {
  state: Record<string, Tensor>;
  meta: OptimizerMeta;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function isJsonValue(v: unknown): v is Json {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(isJsonValue);
  return false; // objects, tensors, functions: not hyper-parameters we checkpoint
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** The object without its undefined entries, so `{ ...defaults, ...defined(options) }` keeps defaults. */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkNumber(kind: string, name: string, v: unknown, ok: (x: number) => boolean, what: string): void {
  if (typeof v !== 'number' || Number.isNaN(v) || !ok(v)) throw new RangeError(`${kind}: invalid ${name} ${String(v)} (${what})`);
}

// ---------------------------------------------------------------------------------------------
// Data-parallel training's seam (src/dist/data-parallel.ts sets it; absent, nothing happens)

/**
 * Averages gradients across data-parallel ranks at the first point they are read: `beforeRead` from
 * clipGradNorm (the clip must see the global gradient, as under DDP), `beforeStep` from every
 * optimiser step whose `replicated` is true; `afterZero` from zeroGrad (those gradients are gone).
 */
export interface GradientSync {
  beforeRead(params: readonly Tensor[]): void;
  beforeStep(opt: Optimizer): void;
  afterZero(params: readonly Tensor[]): void;
}

let gradientSync: GradientSync | null = null;

/** Installs (or, with null, removes) the data-parallel gradient hook. */
export function setGradientSync(s: GradientSync | null): void {
  gradientSync = s;
}

/** For code that reads gradients itself (clipGradNorm): makes them the all-ranks average first. */
export function syncGradients(params: readonly Tensor[]): void {
  gradientSync?.beforeRead(params);
}

// ---------------------------------------------------------------------------------------------
// The base class

export abstract class Optimizer<H extends BaseHyper = BaseHyper> {
  /** The defaults each group's missing hyper-parameters are taken from. */
  readonly defaults: H;
  /** The parameter groups, every hyper-parameter filled in; edit `lr` etc. freely between steps. */
  readonly paramGroups: ResolvedGroup<H>[] = [];
  /** Per-parameter state, created lazily on a parameter's first update. */
  protected readonly state = new Map<Tensor, ParamState>();
  /**
   * Under data-parallel training: whether these parameters are one model replicated on every rank
   * (its gradients are averaged across ranks before each step: a student, a generator) — the default —
   * or this rank's own (false: e.g. DeepInversion's optimised input batch, different on every rank).
   */
  replicated = true;

  /** The optimiser's name in state dicts ('SGD', 'Adam', 'AdamW'); subclasses override it. */
  get kind(): string { return 'Optimizer'; }
  /** Throws if a (resolved) group's hyper-parameters are out of range. */
  protected abstract checkHyper(g: ResolvedGroup<H>): void;
  /** Throws if loaded state for one parameter is incomplete for `group`. */
  protected abstract checkLoadedState(index: number, names: ReadonlySet<string>, step: number, group: ResolvedGroup<H>): void;
  /** The buffer names this optimiser may hold. */
  protected abstract get bufferNames(): readonly string[];
  /** Updates one parameter in place (called under noGrad inside a tidy scope, after state.step += 1). */
  protected abstract update(p: Tensor, grad: Tensor, state: ParamState, group: ResolvedGroup<H>): void;

  constructor(params: Iterable<Tensor> | ParamGroup[], defaults: H) {
    this.defaults = { ...defaults };
    const list = Array.isArray(params) ? (params as unknown[]) : [...(params as Iterable<unknown>)];
    if (list.length === 0) throw new Error(`${this.kind}: got an empty parameter list`);
    if (list.every((x) => x instanceof Tensor)) {
      this.addParamGroup({ params: list as Tensor[] });
    } else if (list.every((x) => !(x instanceof Tensor) && x !== null && typeof x === 'object' && Array.isArray((x as ParamGroup).params))) {
      for (const g of list as ParamGroup[]) this.addParamGroup(g);
    } else {
      throw new TypeError(`${this.kind}: params must be an iterable of Tensors or an array of { params: Tensor[], ... } groups`);
    }
  }

  /** Adds a group (torch's add_param_group); missing hyper-parameters come from the defaults. */
  addParamGroup(group: ParamGroup): void {
    const params = [...group.params];
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new TypeError(`${this.kind}: a param group holds something that is not a Tensor`);
      if (p.isDisposed) throw new Error(`${this.kind}: a parameter was already disposed`);
    }
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) for (const p of g.params) seen.add(p);
    for (const p of params) {
      if (seen.has(p)) throw new Error(`${this.kind}: some parameters appear more than once (in one group or in several groups)`);
      seen.add(p);
    }
    const resolved = { ...this.defaults, ...group, params } as ResolvedGroup<H>;
    const r = resolved as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (r[k] === undefined && k in this.defaults) r[k] = (this.defaults as Record<string, unknown>)[k];
      if (k !== 'params' && Array.isArray(r[k])) r[k] = [...(r[k] as unknown[])]; // e.g. betas: no sharing between groups
    }
    this.checkHyper(resolved);
    this.paramGroups.push(resolved);
  }

  /** All parameters, in group order (the order of the indices in state dicts). */
  parameters(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Sets every group's learning rate (a list sets group by group). */
  setLr(lr: number | readonly number[]): void {
    if (typeof lr === 'number') {
      for (const g of this.paramGroups) g.lr = lr;
      return;
    }
    if (lr.length !== this.paramGroups.length) {
      throw new RangeError(`${this.kind}.setLr: ${lr.length} rates for ${this.paramGroups.length} param groups`);
    }
    this.paramGroups.forEach((g, i) => (g.lr = lr[i]!));
  }

  /** The learning rate of each group. */
  get lrs(): number[] {
    return this.paramGroups.map((g) => g.lr);
  }

  /** The state of one parameter (undefined before its first update), for inspection. */
  stateOf(p: Tensor): Readonly<ParamState> | undefined {
    return this.state.get(p);
  }

  /** One update of every parameter that has a gradient (parameters without one are skipped). */
  step(): void {
    gradientSync?.beforeStep(this);
    noGrad(() =>
      tidy(() => {
        for (const group of this.paramGroups) {
          for (const p of group.params) {
            const grad = p.grad; // a new handle, freed by the tidy scope
            if (grad === null) continue;
            let st = this.state.get(p);
            if (!st) {
              st = { step: 0, buffers: {} };
              this.state.set(p, st);
            }
            st.step += 1;
            this.update(p, grad, st, group);
          }
        }
      }),
    );
  }

  /**
   * Clears the gradients: with `setToNone` (the default, as torch) they become null; otherwise they
   * are zeroed in place and detached from any graph.
   */
  zeroGrad(setToNone = true): void {
    gradientSync?.afterZero(this.parameters());
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (setToNone) {
          p.grad = null;
          continue;
        }
        const g = p.grad;
        if (g === null) continue;
        try {
          noGrad(() => {
            if (g.gradFn !== null) g.detach_();
            else if (g.requiresGrad) g.requiresGrad = false;
            g.zero_();
          });
        } finally {
          g.dispose();
        }
      }
    }
  }

  /** Creates (and keeps) a state buffer the first time it is asked for. */
  protected buffer(st: ParamState, name: string, make: () => Tensor): Tensor {
    let b = st.buffers[name];
    if (!b) {
      b = keep(make());
      st.buffers[name] = b;
    }
    return b;
  }

  /**
   * A snapshot of the state: COPIES of the state tensors (the caller owns them: dispose them once
   * written, e.g. `dispose(sd.state)`) and a JSON-serialisable meta. Round-tripping it through
   * loadStateDict continues the exact same trajectory.
   */
  stateDict(): OptimizerState {
    const state: Record<string, Tensor> = {};
    const steps: Record<string, number> = {};
    const paramGroups: OptimizerMeta['paramGroups'] = [];
    let index = 0;
    noGrad(() => {
      for (const group of this.paramGroups) {
        const indices: number[] = [];
        for (const p of group.params) {
          const st = this.state.get(p);
          if (st) {
            steps[String(index)] = st.step;
            for (const [name, t] of Object.entries(st.buffers)) state[`${index}.${name}`] = t.clone();
          }
          indices.push(index++);
        }
        const hyper: { [k: string]: Json } = {};
        for (const [k, v] of Object.entries(group)) {
          if (k !== 'params' && isJsonValue(v)) hyper[k] = Array.isArray(v) ? [...v] : v;
        }
        paramGroups.push({ ...hyper, params: indices });
      }
    });
    return { state, meta: { optimizer: this.kind, version: 1, paramGroups, steps } };
  }

  /**
   * Restores a state dict (the tensors are copied, cast to each parameter's dtype and device, so the
   * caller may dispose its own afterwards). Hyper-parameters are restored too, as torch does. Every
   * check runs before anything changes: on a mismatch (kind, group sizes, unknown names, shapes)
   * this throws and the optimiser is untouched.
   */
  loadStateDict(sd: OptimizerState): void {
    const { state, meta } = sd;
    const kind = this.kind;
    if (!meta || typeof meta !== 'object') throw new TypeError(`${kind}.loadStateDict: missing meta`);
    if (meta.optimizer !== kind) throw new Error(`${kind}.loadStateDict: the state dict is for ${String(meta.optimizer)}, not ${kind}`);
    if (!Array.isArray(meta.paramGroups) || meta.paramGroups.length !== this.paramGroups.length) {
      throw new Error(`${kind}.loadStateDict: the state dict has ${meta.paramGroups?.length} param groups, the optimizer ${this.paramGroups.length}`);
    }
    const params = this.parameters();
    let offset = 0;
    meta.paramGroups.forEach((saved, gi) => {
      const n = this.paramGroups[gi]!.params.length;
      const expected = Array.from({ length: n }, (_, i) => offset + i);
      if (!Array.isArray(saved.params) || !sameShape(saved.params, expected)) {
        throw new Error(`${kind}.loadStateDict: param group ${gi} has ${saved.params?.length} parameters in the state dict but ${n} in the optimizer`);
      }
      offset += n;
    });

    // Group the tensors by parameter index and check each against its parameter.
    const byIndex = new Map<number, Map<string, Tensor>>();
    const allowed = new Set(this.bufferNames);
    for (const [key, t] of Object.entries(state ?? {})) {
      const m = /^(\d+)\.(.+)$/.exec(key);
      if (!m) throw new Error(`${kind}.loadStateDict: state key "${key}" is not "<paramIndex>.<buffer>"`);
      const i = Number(m[1]);
      const name = m[2]!;
      if (i >= params.length) throw new Error(`${kind}.loadStateDict: state "${key}" names parameter ${i}, but the optimizer has ${params.length}`);
      if (!allowed.has(name)) throw new Error(`${kind}.loadStateDict: unknown state buffer "${key}" (${kind} keeps ${[...allowed].join(', ')})`);
      if (!(t instanceof Tensor) || t.isDisposed) throw new TypeError(`${kind}.loadStateDict: state "${key}" is not a live Tensor`);
      const p = params[i]!;
      if (!sameShape(t.shape, p.shape)) {
        throw new Error(`${kind}.loadStateDict: shape mismatch for state "${key}": ${fmtShape(t.shape)} in the state dict, but parameter ${i} has shape ${fmtShape(p.shape)}`);
      }
      let e = byIndex.get(i);
      if (!e) byIndex.set(i, (e = new Map()));
      e.set(name, t);
    }
    const steps = meta.steps ?? {};
    for (const [k, v] of Object.entries(steps)) {
      const i = Number(k);
      if (!Number.isInteger(i) || i < 0 || i >= params.length) throw new Error(`${kind}.loadStateDict: step count for unknown parameter "${k}"`);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${kind}.loadStateDict: invalid step count ${String(v)} for parameter ${k}`);
    }
    for (const i of byIndex.keys()) {
      if (!(String(i) in steps)) throw new Error(`${kind}.loadStateDict: parameter ${i} has state tensors but no step count`);
    }

    // Hyper-parameters as they will be after loading, checked before anything changes.
    const newGroups = this.paramGroups.map((g, gi) => {
      const { params: _ignored, ...saved } = meta.paramGroups[gi]!;
      const merged = { ...g, ...saved, params: g.params } as ResolvedGroup<H>;
      for (const [k, v] of Object.entries(saved)) if (Array.isArray(v)) (merged as Record<string, unknown>)[k] = [...v];
      this.checkHyper(merged);
      return merged;
    });
    let gi = 0;
    let inGroup = 0;
    for (let i = 0; i < params.length; i++) {
      while (inGroup >= newGroups[gi]!.params.length) {
        gi++;
        inGroup = 0;
      }
      inGroup++;
      if (String(i) in steps) this.checkLoadedState(i, new Set(byIndex.get(i)?.keys() ?? []), steps[String(i)]!, newGroups[gi]!);
    }

    // Commit.
    newGroups.forEach((g, i) => Object.assign(this.paramGroups[i]!, g));
    this.disposeState();
    noGrad(() => {
      params.forEach((p, i) => {
        const step = steps[String(i)];
        if (step === undefined) return;
        const buffers: Record<string, Tensor> = {};
        for (const [name, t] of byIndex.get(i) ?? []) {
          buffers[name] = keep(zerosLike(p).copy_(t)); // a fresh tensor with p's dtype and device
        }
        this.state.set(p, { step, buffers });
      });
    });
  }

  /** Frees every state tensor; the next step starts from fresh state. */
  disposeState(): void {
    for (const st of this.state.values()) for (const t of Object.values(st.buffers)) t.dispose();
    this.state.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// SGD

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}
export type SGDHyper = Required<SGDOptions>;

/**
 * torch.optim.SGD:
 *   d = g + wd·p;  b = d on the first step, else b = μ·b + (1 − τ)·d;
 *   d = nesterov ? d + μ·b : b  (when μ ≠ 0);   p −= lr·d
 */
export class SGD extends Optimizer<SGDHyper> {
  constructor(params: Iterable<Tensor> | (ParamGroup & Partial<SGDHyper>)[], options: SGDOptions) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...defined(options), lr: options.lr });
  }
  override get kind(): string { return 'SGD'; }
  protected override get bufferNames(): readonly string[] { return ['momentum_buffer']; }

  protected override checkHyper(g: ResolvedGroup<SGDHyper>): void {
    checkNumber('SGD', 'lr', g.lr, (x) => x >= 0, 'must be >= 0');
    checkNumber('SGD', 'momentum', g.momentum, (x) => x >= 0, 'must be >= 0');
    checkNumber('SGD', 'dampening', g.dampening, () => true, 'must be a number');
    checkNumber('SGD', 'weightDecay', g.weightDecay, (x) => x >= 0, 'must be >= 0');
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
      throw new RangeError('SGD: nesterov momentum requires a momentum and zero dampening');
    }
  }

  protected override checkLoadedState(): void {
    // A missing momentum_buffer is legal (momentum 0, or re-created from the next gradient).
  }

  protected override update(p: Tensor, grad: Tensor, st: ParamState, g: ResolvedGroup<SGDHyper>): void {
    let d = grad;
    if (g.weightDecay !== 0) d = d.add(p, g.weightDecay);
    if (g.momentum !== 0) {
      const existing = st.buffers.momentum_buffer;
      let buf: Tensor;
      if (!existing) {
        buf = this.buffer(st, 'momentum_buffer', () => d.clone()); // torch: clone(grad).detach()
      } else {
        buf = existing.mul_(g.momentum).add_(d, 1 - g.dampening);
      }
      d = g.nesterov ? d.add(buf, g.momentum) : buf;
    }
    p.add_(d, -g.lr);
  }
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}
export type AdamHyper = Required<AdamOptions>;

/**
 * torch.optim.Adam (single-tensor rule), with L2 weight decay added to the gradient:
 *   g += wd·p;  m = lerp(m, g, 1 − β1);  v = β2·v + (1 − β2)·g²;  (amsgrad: v̂max = max(v̂max, v))
 *   p −= (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)        t = this parameter's step count
 */
export class Adam extends Optimizer<AdamHyper> {
  /** AdamW's decoupled decay instead of L2. */
  protected get decoupled(): boolean { return false; }

  constructor(params: Iterable<Tensor> | (ParamGroup & Partial<AdamHyper>)[], options: AdamOptions = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, ...defined(options) });
  }
  override get kind(): string { return 'Adam'; }
  protected override get bufferNames(): readonly string[] { return ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']; }

  protected override checkHyper(g: ResolvedGroup<AdamHyper>): void {
    const k = this.kind;
    checkNumber(k, 'lr', g.lr, (x) => x >= 0, 'must be >= 0');
    checkNumber(k, 'eps', g.eps, (x) => x >= 0, 'must be >= 0');
    checkNumber(k, 'weightDecay', g.weightDecay, (x) => x >= 0, 'must be >= 0');
    if (!Array.isArray(g.betas) || g.betas.length !== 2) throw new RangeError(`${k}: betas must be a pair [beta1, beta2]`);
    checkNumber(k, 'beta1', g.betas[0], (x) => x >= 0 && x < 1, 'must be in [0, 1)');
    checkNumber(k, 'beta2', g.betas[1], (x) => x >= 0 && x < 1, 'must be in [0, 1)');
  }

  protected override checkLoadedState(index: number, names: ReadonlySet<string>, step: number, g: ResolvedGroup<AdamHyper>): void {
    if (step === 0 && names.size === 0) return;
    const need = g.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
    for (const n of need) {
      if (!names.has(n)) throw new Error(`${this.kind}.loadStateDict: parameter ${index} has step ${step} but no "${index}.${n}" state tensor`);
    }
  }

  protected override update(p: Tensor, grad: Tensor, st: ParamState, g: ResolvedGroup<AdamHyper>): void {
    const [beta1, beta2] = g.betas;
    const expAvg = this.buffer(st, 'exp_avg', () => zerosLike(p));
    const expAvgSq = this.buffer(st, 'exp_avg_sq', () => zerosLike(p));
    let d = grad;
    if (g.weightDecay !== 0) {
      if (this.decoupled) p.mul_(1 - g.lr * g.weightDecay);
      else d = d.add(p, g.weightDecay);
    }
    expAvg.lerp_(d, 1 - beta1);
    expAvgSq.mul_(beta2).addcmul_(d, d, 1 - beta2);
    const step = st.step;
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    const stepSize = g.lr / biasCorrection1;
    const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
    let denom: Tensor;
    if (g.amsgrad) {
      const maxSq = this.buffer(st, 'max_exp_avg_sq', () => zerosLike(p));
      maxSq.copy_(maxSq.maximum(expAvgSq));
      denom = maxSq.sqrt().div_(biasCorrection2Sqrt).add_(g.eps);
    } else {
      denom = expAvgSq.sqrt().div_(biasCorrection2Sqrt).add_(g.eps);
    }
    p.addcdiv_(expAvg, denom, -stepSize);
  }
}

/**
 * torch.optim.AdamW: Adam with decoupled weight decay p ← p·(1 − lr·wd) before the update (and no
 * L2 term in the gradient). Default weightDecay 1e-2, as torch.
 */
export class AdamW extends Adam {
  protected override get decoupled(): boolean { return true; }
  constructor(params: Iterable<Tensor> | (ParamGroup & Partial<AdamHyper>)[], options: AdamOptions = {}) {
    super(params, { weightDecay: 1e-2, ...defined(options) });
  }
  override get kind(): string { return 'AdamW'; }
}

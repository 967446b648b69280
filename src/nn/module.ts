// Module: named parameters and buffers, child modules, train/eval, state dicts — PyTorch's shape.
import { keep, noGrad, tidy, Tensor, type Device, type DType } from '../tensor/tensor.js';

export function snakeCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Marks a tensor as a trainable parameter: requires grad and is exempt from memory scopes. */
export function parameter(t: Tensor): Tensor {
  keep(t);
  if (!t.requiresGrad) t.requiresGrad = true;
  return t;
}

export class StateDictError extends Error {
  constructor(
    message: string,
    readonly missing: string[] = [],
    readonly unexpected: string[] = [],
    readonly mismatched: { key: string; expected: number[]; got: number[] }[] = [],
  ) {
    super(message);
    this.name = 'StateDictError';
  }
}

/**
 * Base class of all layers and models. Child modules are discovered from own properties (a Module,
 * or an array of Modules, named `blocks.0`, `blocks.1`, ... as PyTorch's ModuleList); parameters
 * and buffers are registered explicitly, with the property of the same name pointing at them.
 */
export class Module {
  training = true;
  readonly #params = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, { t: Tensor | null; persistent: boolean }>();

  protected registerParameter(name: string, t: Tensor | null): Tensor {
    if (t !== null) parameter(t);
    this.#params.set(name, t);
    return t as Tensor;
  }

  protected registerBuffer(name: string, t: Tensor | null, persistent = true): Tensor {
    if (t !== null) keep(t);
    this.#buffers.set(name, { t, persistent });
    return t as Tensor;
  }

  /**
   * Direct children, in property order, named in PyTorch's snake_case (`patchEmbed` → `patch_embed`)
   * so that state-dict keys read like the PyTorch / timm ones.
   */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [prop, v] of Object.entries(this)) {
      const k = snakeCase(prop);
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v) && v.length > 0 && v.every((m) => m instanceof Module)) {
        v.forEach((m, i) => out.push([`${k}.${i}`, m as Module]));
      }
    }
    return out;
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.namedChildren()) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, t] of this.#params) if (t) out.push([prefix ? `${prefix}.${name}` : name, t]);
    for (const [name, child] of this.namedChildren()) out.push(...child.namedParameters(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = '', persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, b] of this.#buffers) {
      if (b.t && (!persistentOnly || b.persistent)) out.push([prefix ? `${prefix}.${name}` : name, b.t]);
    }
    for (const [name, child] of this.namedChildren()) {
      out.push(...child.namedBuffers(prefix ? `${prefix}.${name}` : name, persistentOnly));
    }
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Total number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel(), 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /**
   * Parameters and persistent buffers by dotted name. The tensors are the module's own (not copies):
   * read them, save them, but do not dispose them.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, t] of this.namedParameters()) out[k] = t;
    for (const [k, t] of this.namedBuffers('', true)) out[k] = t;
    return out;
  }

  /**
   * Copies values into the module's parameters and buffers (in place, converting dtype/device).
   * With strict (the default) any missing or unexpected key fails; a shape mismatch always fails.
   * All problems are listed in one error before anything is copied.
   */
  loadStateDict(state: Record<string, Tensor>, opts: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    // Object.hasOwn, not `in`: a key such as 'constructor' or 'toString' must not match Object.prototype
    const missing = Object.keys(own).filter((k) => !Object.hasOwn(state, k));
    const unexpected = Object.keys(state).filter((k) => !Object.hasOwn(own, k));
    const mismatched: { key: string; expected: number[]; got: number[] }[] = [];
    for (const [k, t] of Object.entries(own)) {
      const src = state[k];
      if (!src) continue;
      const a = t.shape;
      const b = src.shape;
      if (a.length !== b.length || a.some((d, i) => d !== b[i])) mismatched.push({ key: k, expected: a, got: b });
    }
    if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
      const lines: string[] = [];
      if (missing.length) lines.push(`missing keys: ${missing.join(', ')}`);
      if (unexpected.length) lines.push(`unexpected keys: ${unexpected.join(', ')}`);
      for (const m of mismatched) lines.push(`shape mismatch for ${m.key}: model has [${m.expected.join(', ')}], state has [${m.got.join(', ')}]`);
      throw new StateDictError(`loadStateDict failed:\n  ${lines.join('\n  ')}`, missing, unexpected, mismatched);
    }
    noGrad(() =>
      tidy(() => {
        for (const [k, t] of Object.entries(own)) {
          const src = state[k];
          if (src) t.copy_(src);
        }
      }),
    );
    return { missing, unexpected };
  }

  /** Moves or casts every parameter and buffer (float dtypes only are cast), in place of the old ones. */
  to(target: Device | DType): this {
    const isFloat = (t: Tensor): boolean => t.dtype.startsWith('float') || t.dtype === 'bfloat16';
    const isDevice = target === 'cpu' || target.startsWith('cuda');
    this.applyToTensors((t) => (isDevice || isFloat(t) ? t.to(target) : null));
    return this;
  }

  /**
   * Replaces each parameter and buffer by fn(old) (null = keep the old one); the property of the same
   * name is re-pointed, the old tensor disposed. Parameters stay leaves that require grad.
   */
  protected applyToTensors(fn: (t: Tensor) => Tensor | null): void {
    for (const [, m] of this.namedModules()) m.applyOwn(fn);
  }

  private applyOwn(fn: (t: Tensor) => Tensor | null): void {
    const self = this as unknown as Record<string, unknown>;
    const swap = (old: Tensor, isParam: boolean): Tensor => {
      const next = noGrad(() => fn(old));
      if (next === null || next.isSame(old)) {
        next?.dispose();
        return old;
      }
      const fresh = noGrad(() => next.detach());
      next.dispose();
      if (isParam) parameter(fresh);
      else keep(fresh);
      for (const key of Object.keys(self)) if (self[key] === old) self[key] = fresh;
      old.dispose();
      return fresh;
    };
    for (const [name, t] of this.#params) if (t) this.#params.set(name, swap(t, true));
    for (const [, b] of this.#buffers) if (b.t) b.t = swap(b.t, false);
  }

  /** Frees every parameter and buffer of this module and its children. */
  dispose(): void {
    for (const t of this.parameters()) t.dispose();
    for (const t of this.buffers()) t.dispose();
  }
}

/** A layer mapping one tensor to one tensor, as Sequential composes them. */
export interface Layer {
  forward(x: Tensor): Tensor;
}

export class Sequential extends Module implements Layer {
  readonly layers: (Module & Layer)[];
  constructor(...layers: (Module & Layer)[]) {
    super();
    this.layers = layers;
  }
  /** PyTorch's Sequential names children 0, 1, ...; so do we (keys `0.weight`, not `layers.0.weight`). */
  override namedChildren(): [string, Module][] {
    return this.layers.map((m, i) => [String(i), m]);
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const layer of this.layers) {
      const next = layer.forward(h);
      // free intermediates only: never the caller's input (an Identity first layer passes it through)
      if (next !== h && h !== x) h.dispose();
      h = next;
    }
    return h;
  }
}

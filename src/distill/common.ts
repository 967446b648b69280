// What every method shares and writes once: the teacher's no-grad targets, the student's KD loss on
// a batch, a generator with its optimiser and fixed preview latents, and state-dict prefixing.
import { keep, noGrad, randn, type Tensor } from '../tensor/tensor.js';
import { crossEntropy } from '../tensor/functional.js';
import { Adam, type Optimizer, type OptimizerMeta } from '../nn/optim.js';
import type { Module } from '../nn/module.js';
import { DCGANGenerator } from '../models/generators.js';
import { kdLoss } from './losses.js';
import type { DistillContext, MethodState, StudentLoss, SyntheticBatch } from './types.js';

/** The teacher's logits on x as constants (noGrad, not inferenceMode: they enter the student's graph). */
export function teacherLogits(ctx: DistillContext, x: Tensor): Tensor {
  return noGrad(() => ctx.teacher.forward(x).logits);
}

/**
 * The standard student objective on a synthetic batch: λ_KD·KD(T, S; τ) + λ_CE·CE(S(x), ŷ) with
 * ŷ the batch's labels or the teacher's argmax.
 */
export function studentKD(ctx: DistillContext, batch: SyntheticBatch, o: { tau: number; kdWeight?: number; ceWeight?: number }): StudentLoss {
  const t = teacherLogits(ctx, batch.x);
  const s = ctx.student.forward(batch.x).logits;
  const kd = kdLoss(t, s, o.tau);
  let loss = kd.mul(o.kdWeight ?? 1);
  const logs: Record<string, number> = { 'S/kd': kd.item() };
  if ((o.ceWeight ?? 0) > 0) {
    const y = batch.y ?? t.argmax(1);
    const ce = crossEntropy(s, y);
    loss = loss.add(ce.mul(o.ceWeight!));
    logs['S/ce'] = ce.item();
  }
  return { loss, logs };
}

/** A generator, its Adam optimiser and a fixed set of preview latents (so grids are comparable over time). */
export class GeneratorTrainer<G extends Module & { forward(z: Tensor, labels?: Tensor): Tensor }> {
  readonly opt: Adam;
  readonly previewLatents: Tensor;
  constructor(
    readonly generator: G,
    readonly latentDim: number,
    lr: number,
    betas: [number, number] = [0.5, 0.999],
    previewCount = 80,
  ) {
    this.opt = new Adam(generator.parameters(), { lr, betas });
    this.previewLatents = keep(randn([previewCount, latentDim]));
  }

  latent(n: number): Tensor {
    return randn([n, this.latentDim]);
  }

  /** One generator update on a loss (the teacher is frozen, the student's grads are discarded). */
  step(loss: Tensor, ctx: DistillContext): void {
    this.opt.zeroGrad();
    loss.backward();
    this.opt.step();
    // The generator loss also reached the student's parameters: those grads are not the student's.
    ctx.student.zeroGrad();
  }

  /** Generator output for the fixed preview latents, in eval mode (BatchNorm statistics untouched). */
  preview(n: number, labels?: Tensor): Tensor {
    const was = this.generator.training;
    this.generator.eval();
    try {
      return noGrad(() => this.generator.forward(this.previewLatents.narrow(0, 0, Math.min(n, this.previewLatents.size(0))), labels));
    } finally {
      this.generator.train(was);
    }
  }

  /** Copies of the generator's weights, its optimiser state and the preview latents (caller disposes). */
  stateDict(prefix = 'gen.'): MethodState {
    const tensors: Record<string, Tensor> = {};
    putModuleState(tensors, prefix, this.generator);
    tensors[`${prefix}preview`] = noGrad(() => this.previewLatents.clone());
    return { tensors, meta: { [`${prefix}optim`]: putOptimizerState(tensors, `${prefix}optim.`, this.opt) } };
  }

  loadStateDict(state: MethodState, prefix = 'gen.'): void {
    const gen: Record<string, Tensor> = {};
    const optState: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(state.tensors)) {
      if (!k.startsWith(prefix)) continue;
      const rest = k.slice(prefix.length);
      if (rest.startsWith('optim.')) optState[rest.slice(6)] = t;
      else if (rest === 'preview') noGrad(() => this.previewLatents.copy_(t));
      else gen[rest] = t;
    }
    this.generator.loadStateDict(gen);
    const meta = state.meta[`${prefix}optim`] as OptimizerMeta | undefined;
    if (!meta) throw new Error(`method state has no ${prefix}optim metadata`);
    this.opt.loadStateDict({ state: optState, meta });
  }

  dispose(): void {
    this.generator.dispose();
    this.opt.disposeState();
    this.previewLatents.dispose();
  }
}

/** The parts of a generator-based method that only delegate to its GeneratorTrainer (dafl, dfad, zskt; detection tgan, dfad). */
export abstract class GeneratorMethod<G extends Module & { forward(z: Tensor, labels?: Tensor): Tensor }> {
  protected abstract readonly gen: GeneratorTrainer<G>;
  previewBatch(_ctx: unknown, n: number): Tensor {
    return this.gen.preview(n);
  }
  stateDict(): MethodState {
    return this.gen.stateDict();
  }
  loadStateDict(s: MethodState): void {
    this.gen.loadStateDict(s);
  }
  dispose(): void {
    this.gen.dispose();
  }
}

/** Copies of a module's tensors, each under `${prefix}${name}`, added to `out` (a method's stateDict). */
export function putModuleState(out: Record<string, Tensor>, prefix: string, m: { stateDict(): Record<string, Tensor> }): void {
  noGrad(() => {
    for (const [k, t] of Object.entries(m.stateDict())) out[`${prefix}${k}`] = t.clone();
  });
}

/** An optimiser's state tensors, each under `${prefix}${name}`, added to `out`; returns its metadata (for MethodState.meta). */
export function putOptimizerState(out: Record<string, Tensor>, prefix: string, opt: Optimizer): OptimizerMeta {
  const sd = opt.stateDict();
  for (const [k, t] of Object.entries(sd.state)) out[`${prefix}${k}`] = t;
  return sd.meta;
}

/** `t[key]`, or an error naming the method and the key (a checkpoint of another method or version). */
export function stateTensor(t: Record<string, Tensor>, key: string, method: string): Tensor {
  const v = t[key];
  if (!v) throw new Error(`${method} state has no ${key}`);
  return v;
}

// A checkpoint section's tensors (kept here too for the methods' imports; it lives with the checkpoint code).
export { unprefixed } from '../export/checkpoint.js';

/** The DAFL/DFAD-style convolutional generator and its trainer, sized for the teacher's input. */
export function dcganTrainer(
  ctx: DistillContext,
  h: { latentDim: number; baseChannels: number; lrG: number },
): GeneratorTrainer<DCGANGenerator> {
  const [C, H] = ctx.inputShape;
  const g = new DCGANGenerator({ latentDim: h.latentDim, imageSize: H, channels: C, baseChannels: h.baseChannels, mean: ctx.mean, std: ctx.std });
  return new GeneratorTrainer(g, h.latentDim, h.lrG);
}

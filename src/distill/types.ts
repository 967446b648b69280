// The common shape of every data-free method (Fast-Datafree's interface, METHODS.md): a method
// produces synthetic batches (updating its generator or image bank) and gives the student's loss on
// a batch. One shared loop (loop.ts) runs any method with seeds, checkpoints, resume, evaluation
// on real held-out data and sample grids.
import type { Tensor } from '../tensor/tensor.js';
import type { Classifier } from '../models/types.js';
import type { ImageDataset } from '../data/types.js';

/** What a method sees of the run. The teacher is frozen (eval mode, no parameter gradients). */
export interface DistillContext {
  teacher: Classifier;
  student: Classifier;
  /** [C, H, W] of the teacher's (and student's) input. */
  inputShape: [number, number, number];
  numClasses: number;
  /** The teacher's input normalisation: synthetic images live in this normalised space. */
  mean: number[];
  std: number[];
  batchSize: number;
  /** Real labelled training data, only for the non-data-free references (`kd`, `scratch`). */
  realTrain?: ImageDataset;
}

/** One synthetic batch, in the teacher's normalised input space, detached from any graph. */
export interface SyntheticBatch {
  x: Tensor;
  /** Labels when the method has them (real data, or deepinv's targets); else the teacher's argmax is used. */
  y?: Tensor;
  /** Scalar losses of the synthesis step, for logging (e.g. { 'G/adv': …, 'G/attn': … }). */
  logs: Record<string, number>;
}

export interface StudentLoss {
  loss: Tensor;
  logs: Record<string, number>;
}

/** A method's checkpointable state: tensors (copies, owned by the caller) and JSON metadata. */
export interface MethodState {
  tensors: Record<string, Tensor>;
  meta: Record<string, unknown>;
}

export interface DistillMethod {
  readonly name: string;
  /** Student updates per synthesis step (e.g. DFAD's 5, ZSKT's 10). */
  readonly studentStepsPerIteration: number;
  /** When set, the student steps of iteration i instead (e.g. 0 during a generator-only warm-up). */
  studentStepsAt?(iteration: number): number;
  /** Learning rate and optimiser of the student, as the method's paper sets them. */
  readonly studentOptimizer: { kind: 'adam' | 'sgd'; lr: number; momentum?: number; weightDecay?: number };
  /** Synthesises a batch and updates the generator (or image bank). Called once per iteration. */
  synthesize(ctx: DistillContext, iteration: number): SyntheticBatch;
  /**
   * A batch for the k-th student step of this iteration: the fresh one, or one replayed from a bank.
   * Default: the fresh batch every time.
   */
  studentBatch?(ctx: DistillContext, fresh: SyntheticBatch, k: number): SyntheticBatch;
  /** The student's loss on a batch (the teacher's outputs are computed inside, without grad). */
  studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss;
  /** Everything needed for an exact resume (generator weights, its optimiser, the bank), as copies the caller disposes. */
  stateDict(): MethodState;
  loadStateDict(state: MethodState): void;
  /** A fixed-latent batch for the sample grids (same latents every time), if the method has a generator. */
  previewBatch?(ctx: DistillContext, n: number): Tensor;
  /** The method's hyper-parameters, recorded in the run's config.json. */
  readonly hparams: Record<string, number | string | boolean>;
  dispose(): void;
}

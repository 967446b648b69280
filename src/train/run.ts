// A supervised training run with a run folder: config.json, metrics.jsonl, checkpoints/last (model +
// optimiser, every epoch) and checkpoints/best (by validation accuracy), model.{safetensors,json}
// (the best model for users). `resume` continues from checkpoints/last exactly: the random state is
// re-seeded from (seed, epoch) at every epoch start, so an interrupted run and an uninterrupted one
// take the same steps.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dataParallel, rankBatch, rankCheckpointBase, rankSeed } from '../dist/data-parallel.js';
import { dispose, manualSeed, randperm, type Tensor } from '../tensor/tensor.js';
import { AdamW, type OptimizerMeta } from '../nn/optim.js';
import { oneCycle } from '../nn/schedule.js';
import type { ImageDataset } from '../data/types.js';
import { checkpointPaths, saveCheckpoint, saveTensors } from '../export/checkpoint.js';
import { writeJsonAtomic } from '../util/fs.js';
import type { ModelCard } from '../models/load.js';
import { evaluateClassifier, supervisedStep, warmupCosine, type ClassifierModule, type EvalResult } from './classifier.js';
import { startOrResume } from './resume.js';
export type { ClassifierModule };


export interface TrainRunConfig {
  dataset: string;
  model: string;
  /** Preset overrides (e.g. { dropPath: 0.1 }). */
  modelOverrides: Record<string, unknown>;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** 'cosine': linear warm-up (warmupEpochs) then cosine decay; 'onecycle': torch's OneCycleLR (30% cosine rise from lr/25). */
  schedule: 'cosine' | 'onecycle';
  warmupEpochs: number;
  labelSmoothing: number;
  translate: number;
  flip: boolean;
  clipNorm: number;
  seed: number;
  /**
   * The model whose weights the run started from (`dfkd train --init`): its path, SHA-256, and from its
   * card the command that made it, its epochs, wall time and test accuracy; null: a random initialisation.
   */
  init: { path: string; sha256: string; command?: string; epochs?: number; seconds?: number; test_acc?: number } | null;
}

export const TRAIN_RUN_DEFAULTS: Omit<TrainRunConfig, 'dataset' | 'model'> = {
  modelOverrides: {},
  epochs: 30,
  batchSize: 64,
  lr: 2e-3,
  weightDecay: 0.05,
  schedule: 'cosine',
  warmupEpochs: 1,
  labelSmoothing: 0.1,
  translate: 2,
  flip: false,
  clipNorm: 1,
  seed: 0,
  init: null,
};

export interface EpochMetrics {
  epoch: number;
  step: number;
  train_loss: number;
  val_acc: number;
  lr: number;
  seconds: number;
}

interface LastState {
  epoch: number; // epochs completed
  step: number;
  bestValAcc: number;
  bestEpoch: number;
  seconds: number;
  optimizer: OptimizerMeta;
}

export interface RunHooks {
  onStep?: (s: { epoch: number; step: number; stepsPerEpoch: number; totalSteps: number; loss: number; lr: number; imagesPerSecond: number }) => void;
  onEpoch?: (m: EpochMetrics) => void;
  log?: (line: string) => void;
}

/** The seed of one epoch's randomness (shuffle, augmentation, dropout): depends only on (seed, epoch). */
export const epochSeed = (seed: number, epoch: number): number => seed * 100_003 + epoch;

export function trainRun(
  cfg: TrainRunConfig,
  out: string,
  model: ClassifierModule,
  data: { train: ImageDataset; val: ImageDataset },
  opts: { resume?: boolean; stopAfterEpochs?: number } & RunHooks = {},
): { bestValAcc: number; bestEpoch: number; epochs: number; seconds: number } {
  // Data-parallel (src/dist/data-parallel.ts): every rank draws the same permutation of the training
  // set each epoch and takes its own slice of each global batch (torch's DistributedSampler), with its
  // own augmentation; gradients are averaged at each step; each rank evaluates its share of the
  // validation split, rank 0 alone writes the metrics and checkpoints/best; every rank keeps its own checkpoints/last (rank r: checkpoints/rank-r/last).
  const dp = dataParallel();
  const rank = dp?.rank ?? 0;
  const main = rank === 0;
  const log = main ? (opts.log ?? (() => {})) : () => {};
  const ckptDir = join(out, 'checkpoints');
  const last = rankCheckpointBase(out, rank);
  const best = join(ckptDir, 'best');
  mkdirSync(dirname(last), { recursive: true });
  const split = rankBatch(cfg.batchSize, out, opts.resume);

  const opt = new AdamW(model.parameters(), { lr: cfg.lr, weightDecay: cfg.weightDecay });
  const n = data.train.labels.size(0);
  const stepsPerEpoch = Math.floor(n / cfg.batchSize);
  if (stepsPerEpoch === 0) throw new Error(`batch size ${cfg.batchSize} is larger than the training set (${n})`);
  const totalSteps = cfg.epochs * stepsPerEpoch;
  const warmup = Math.round(cfg.warmupEpochs * stepsPerEpoch);
  const schedule =
    cfg.schedule === 'onecycle' ? oneCycle({ maxLr: cfg.lr, totalSteps }) : (step: number): number => warmupCosine(step, totalSteps, warmup, cfg.lr);

  const state: LastState = startOrResume({
    out, last, cfg, defaults: TRAIN_RUN_DEFAULTS as Partial<TrainRunConfig>, model, opt, resume: opts.resume, log,
    initial: { epoch: 0, step: 0, bestValAcc: -1, bestEpoch: -1, seconds: 0, optimizer: opt.stateDict().meta },
    describe: (st) => `after epoch ${st.epoch} (step ${st.step}, best val ${(100 * st.bestValAcc).toFixed(2)}%)`,
  });

  // Rank 0's weights everywhere (DDP's broadcast at construction).
  dp?.broadcastFromMain(Object.values(model.stateDict()));
  const started = performance.now() - state.seconds * 1000;
  const elapsed = (): number => (performance.now() - started) / 1000;
  const stopAt = opts.stopAfterEpochs !== undefined ? Math.min(cfg.epochs, state.epoch + opts.stopAfterEpochs) : cfg.epochs;

  for (let epoch = state.epoch; epoch < stopAt; epoch++) {
    manualSeed(epochSeed(cfg.seed, epoch));
    model.train();
    const perm = randperm(n);
    // Each rank augments with its own stream (the permutation above is every rank's).
    if (dp) manualSeed(rankSeed(epochSeed(cfg.seed, epoch), rank + 1));
    let lossSum = 0;
    let lr = cfg.lr;
    const epochStart = performance.now();
    for (let b = 0; b < stepsPerEpoch; b++) {
      lr = schedule(state.step);
      opt.setLr(lr);
      const loss = supervisedStep(model, opt, data.train, perm.narrow(0, b * cfg.batchSize + rank * split.batch, split.batch), cfg);
      if (!Number.isFinite(loss)) {
        perm.dispose();
        throw new Error(`training diverged: loss is ${loss} at epoch ${epoch + 1}, step ${state.step}; the last good checkpoint is ${last}.safetensors (try a lower --lr)`);
      }
      lossSum += loss;
      state.step++;
      opts.onStep?.({
        epoch,
        step: state.step,
        stepsPerEpoch,
        totalSteps,
        loss,
        lr,
        imagesPerSecond: ((b + 1) * cfg.batchSize) / ((performance.now() - epochStart) / 1000),
      });
    }
    perm.dispose();
    // The ranks' BN running statistics moved on their own slices: rank 0's everywhere, so every
    // rank's checkpoint holds the same model; the loss reported is the global batch's.
    if (dp) {
      dp.broadcastFromMain(model.buffers());
      lossSum = dp.agreeMean([lossSum])[0]!;
    }
    // Each rank evaluates its share of the validation split; rank 0 records it.
    const evaluated = evaluateClassifier(model, data.val, 500, dp?.evalShard);
    const val = main ? evaluated : undefined;
    if (val) {
      const metrics: EpochMetrics = { epoch: epoch + 1, step: state.step, train_loss: lossSum / stepsPerEpoch, val_acc: val.accuracy, lr, seconds: elapsed() };
      appendFileSync(join(out, 'metrics.jsonl'), `${JSON.stringify(metrics)}\n`);
      opts.onEpoch?.(metrics);
    }
    state.epoch = epoch + 1;
    state.seconds = dp ? dp.agreeMax([elapsed()])[0]! : elapsed();
    if (val && val.accuracy > state.bestValAcc) {
      state.bestValAcc = val.accuracy;
      state.bestEpoch = epoch + 1;
      const card: ModelCard = {
        preset: cfg.model,
        overrides: { ...cfg.modelOverrides, numClasses: data.train.numClasses },
        dataset: cfg.dataset,
        numClasses: data.train.numClasses,
        classNames: data.train.classNames,
        inputShape: data.train.images.shape.slice(1),
        mean: data.train.mean,
        std: data.train.std,
        val_acc: val.accuracy,
        params: model.numParameters(),
        epoch: epoch + 1,
      };
      saveCheckpoint(best, model, card);
    }
    // last: model + optimiser state, written after best so a crash between them loses nothing.
    const optSd = opt.stateDict();
    state.optimizer = optSd.meta;
    const extra: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(optSd.state)) extra[`optim.${k}`] = t;
    saveCheckpoint(last, model, { train: cfg, state }, extra);
    dispose(optSd.state);
  }
  opt.disposeState();
  return { bestValAcc: state.bestValAcc, bestEpoch: state.bestEpoch, epochs: state.epoch, seconds: state.seconds };
}

/** Copies checkpoints/best into <out>/model.{safetensors,json} with the final test figure. */
export function publishModel(out: string, model: ClassifierModule, card: ModelCard & { train?: TrainRunConfig }): void {
  saveTensors(checkpointPaths(join(out, 'model')).weights, model.stateDict(), { format: 'vit-dfkd', preset: card.preset });
  writeJsonAtomic(checkpointPaths(join(out, 'model')).config, card);
}

export type { EvalResult };

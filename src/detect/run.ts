// A detector training run (the teacher, or the `scratch` student reference), shaped like
// train/run.ts: <out>/config.json, metrics.jsonl, checkpoints/last (model + optimiser, every epoch),
// checkpoints/best (by validation mAP@[.5:.95]), model.{safetensors,json} at the end. Canvas datasets
// get fresh training layouts every epoch (same training images; canvas seed from (seed, epoch)), and
// the random state is re-seeded from (seed, epoch) at every epoch start, so `resume` continues exactly.
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, manualSeed, randperm, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { AdamW, type OptimizerMeta } from '../nn/optim.js';
import { clipGradNorm } from '../nn/clip.js';
import { normalize } from '../data/augment.js';
import { trainCanvasesForEpoch, type DetectionDataset } from '../data/detection.js';
import { checkpointPaths, loadCheckpointInto, readCheckpointConfig, saveCheckpoint, saveTensors } from '../export/checkpoint.js';
import { writeJsonAtomic } from '../util/fs.js';
import { createDetector, describeDetector, DETR, type DetrConfig } from '../models/detr.js';
import { modelBasePath } from '../models/load.js';
import { warmupCosine } from '../train/classifier.js';
import { epochSeed } from '../train/run.js';
import { startOrResume } from '../train/resume.js';
import { evaluateDetector } from './evaluate.js';
import { DETR_LOSS_DEFAULTS, detrSetLoss, type DetectionTarget, type SetLossWeights } from './loss.js';
import { DenseTokenHead } from './dense.js';

export interface DetectTrainConfig {
  task: 'detect';
  dataset: string;
  model: string;
  modelOverrides: Partial<DetrConfig>;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  warmupEpochs: number;
  clipNorm: number;
  seed: number;
  loss: SetLossWeights;
  /** Weight of the dense token-classification loss on the encoder (dense.ts; 0 = plain DETR training). */
  denseWeight: number;
}

/**
 * DETR trains with AdamW 1e-4, weight decay 1e-4, clip 0.1 (COCO, batch 64, 500 epochs). From scratch on
 * the canvases, in 10-epoch student trials (3,000 canvases, README): lr 1e-3 → val mAP 0.097, 2e-3 →
 * 0.147, 4e-3 → 0.148; dense weight 1 → 0.059 (9 epochs), 3 → 0.095, 6 → 0.084 (at lr 1e-3).
 */
export const DETECT_TRAIN_DEFAULTS: Omit<DetectTrainConfig, 'dataset' | 'model'> = {
  task: 'detect',
  modelOverrides: {},
  epochs: 30,
  batchSize: 32,
  lr: 2e-3,
  weightDecay: 1e-4,
  warmupEpochs: 1,
  clipNorm: 0.1,
  seed: 0,
  loss: DETR_LOSS_DEFAULTS,
  denseWeight: 3,
};

/** What is written beside a trained detector's weights. */
export interface DetectorCard {
  task: 'detect';
  preset: string;
  overrides: Partial<DetrConfig>;
  dataset: string;
  numClasses: number;
  classNames: string[];
  inputShape: number[];
  mean: number[];
  std: number[];
  val_map: number;
  test_map?: number;
  test_ap50?: number;
  params: number;
  flops?: number;
  epoch?: number;
  command?: string;
  seconds?: number;
  epochs?: number;
  [k: string]: unknown;
}

export interface DetectEpochMetrics {
  epoch: number;
  step: number;
  train_loss: number;
  val_map: number;
  val_ap50: number;
  lr: number;
  seconds: number;
}

interface LastState {
  epoch: number;
  step: number;
  bestValMap: number;
  bestEpoch: number;
  seconds: number;
  optimizer: OptimizerMeta;
}

export interface DetectRunHooks {
  onStep?: (s: { epoch: number; step: number; totalSteps: number; loss: number; lr: number; imagesPerSecond: number }) => void;
  onEpoch?: (m: DetectEpochMetrics) => void;
  log?: (line: string) => void;
}

/**
 * One supervised DETR step on images [B, C, H, W] (in [0, 1]) and their targets: set loss over all
 * decoder layers → backward → clip → step. Returns the loss.
 */
export function detectionStep(
  model: DETR, opt: AdamW, images: Tensor, targets: readonly DetectionTarget[], mean: number[], std: number[],
  cfg: Pick<DetectTrainConfig, 'clipNorm' | 'loss'> & { denseWeight?: number }, dense?: DenseTokenHead | null,
): number {
  return tidy(() => {
    const out = model.forward(normalize(images, mean, std));
    let { loss } = detrSetLoss(out, targets, cfg.loss);
    if (dense && (cfg.denseWeight ?? 0) > 0) loss = loss.add(dense.loss(out.encoderTokens, targets).mul(cfg.denseWeight!));
    opt.zeroGrad();
    loss.backward();
    if (cfg.clipNorm > 0) clipGradNorm(dense ? [...model.parameters(), ...dense.parameters()] : model.parameters(), cfg.clipNorm);
    opt.step();
    return loss.item();
  });
}

export function detectTrainRun(
  cfg: DetectTrainConfig,
  out: string,
  model: DETR,
  data: { train: DetectionDataset; val: DetectionDataset },
  opts: { resume?: boolean; stopAfterEpochs?: number } & DetectRunHooks = {},
): { bestValMap: number; bestEpoch: number; epochs: number; seconds: number } {
  const log = opts.log ?? (() => {});
  const ckptDir = join(out, 'checkpoints');
  const last = join(ckptDir, 'last');
  const best = join(ckptDir, 'best');
  mkdirSync(ckptDir, { recursive: true });
  // The dense token head is part of training only (its weights live in checkpoints/last, not in the model).
  const dense = cfg.denseWeight > 0 ? new DenseTokenHead(model.config.dim, data.train.numClasses) : null;
  const opt = new AdamW(dense ? [...model.parameters(), ...dense.parameters()] : model.parameters(), { lr: cfg.lr, weightDecay: cfg.weightDecay });
  const n = data.train.targets.length;
  const stepsPerEpoch = Math.floor(n / cfg.batchSize);
  if (stepsPerEpoch === 0) throw new Error(`batch size ${cfg.batchSize} is larger than the training set (${n})`);
  const totalSteps = cfg.epochs * stepsPerEpoch;
  const warmup = Math.round(cfg.warmupEpochs * stepsPerEpoch);

  const state: LastState = startOrResume({
    out, last, cfg, model, opt, extra: dense ? { dense } : {}, resume: opts.resume, log,
    initial: { epoch: 0, step: 0, bestValMap: -1, bestEpoch: -1, seconds: 0, optimizer: opt.stateDict().meta },
    describe: (st) => `after epoch ${st.epoch} (step ${st.step}, best val mAP ${st.bestValMap.toFixed(4)})`,
  });

  const started = performance.now() - state.seconds * 1000;
  const elapsed = (): number => (performance.now() - started) / 1000;
  const stopAt = opts.stopAfterEpochs !== undefined ? Math.min(cfg.epochs, state.epoch + opts.stopAfterEpochs) : cfg.epochs;
  for (let epoch = state.epoch; epoch < stopAt; epoch++) {
    manualSeed(epochSeed(cfg.seed, epoch));
    model.train();
    // Fresh canvas layouts each epoch (a pure function of (seed, epoch), so resume is exact).
    const fresh = epoch === 0 ? null : trainCanvasesForEpoch(cfg.dataset, cfg.seed, epoch);
    const train = fresh ?? data.train;
    const perm = randperm(n);
    const order = perm.toArray();
    perm.dispose();
    let lossSum = 0;
    let lr = cfg.lr;
    const epochStart = performance.now();
    for (let b = 0; b < stepsPerEpoch; b++) {
      lr = warmupCosine(state.step, totalSteps, warmup, cfg.lr);
      opt.setLr(lr);
      const ids = order.slice(b * cfg.batchSize, (b + 1) * cfg.batchSize);
      const loss = tidy(() => {
        const images = train.images.indexSelect(0, indexTensor(ids));
        return detectionStep(model, opt, images, ids.map((i) => train.targets[i]!), train.mean, train.std, cfg, dense);
      });
      if (!Number.isFinite(loss)) {
        if (fresh) dispose(fresh.images);
        throw new Error(`training diverged: loss is ${loss} at epoch ${epoch + 1}, step ${state.step}; the last good checkpoint is ${last}.safetensors (try a lower --lr)`);
      }
      lossSum += loss;
      state.step++;
      opts.onStep?.({ epoch, step: state.step, totalSteps, loss, lr, imagesPerSecond: ((b + 1) * cfg.batchSize) / ((performance.now() - epochStart) / 1000) });
    }
    if (fresh) fresh.images.dispose();
    const val = evaluateDetector(model, data.val);
    const metrics: DetectEpochMetrics = { epoch: epoch + 1, step: state.step, train_loss: lossSum / stepsPerEpoch, val_map: val.map, val_ap50: val.ap50, lr, seconds: elapsed() };
    appendFileSync(join(out, 'metrics.jsonl'), `${JSON.stringify(metrics)}\n`);
    opts.onEpoch?.(metrics);
    state.epoch = epoch + 1;
    state.seconds = elapsed();
    if (val.map > state.bestValMap) {
      state.bestValMap = val.map;
      state.bestEpoch = epoch + 1;
      saveCheckpoint(best, model, detectorCard(cfg, model, data.train, { val_map: val.map, epoch: epoch + 1 }));
    }
    const optSd = opt.stateDict();
    state.optimizer = optSd.meta;
    const extra: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(optSd.state)) extra[`optim.${k}`] = t;
    if (dense) for (const [k, t] of Object.entries(dense.stateDict())) extra[`dense.${k}`] = t;
    saveCheckpoint(last, model, { train: cfg, state }, extra);
    dispose(optSd.state);
  }
  opt.disposeState();
  dense?.dispose();
  return { bestValMap: state.bestValMap, bestEpoch: state.bestEpoch, epochs: state.epoch, seconds: state.seconds };
}

const indexTensor = (ids: number[]): Tensor => tensor(ids, { dtype: 'int64' });

export function detectorCard(cfg: Pick<DetectTrainConfig, 'model' | 'modelOverrides' | 'dataset'>, model: DETR, data: Pick<DetectionDataset, 'numClasses' | 'classNames' | 'mean' | 'std'>, extra: Partial<DetectorCard> & { val_map: number }): DetectorCard {
  return {
    task: 'detect',
    preset: cfg.model,
    overrides: { ...cfg.modelOverrides, numClasses: data.numClasses },
    dataset: cfg.dataset,
    numClasses: data.numClasses,
    classNames: data.classNames,
    inputShape: model.inputShape,
    mean: data.mean,
    std: data.std,
    params: model.numParameters(),
    flops: describeDetector(cfg.model, { ...cfg.modelOverrides, numClasses: data.numClasses }).flops,
    ...extra,
  };
}

/** Writes <out>/model.{safetensors,json}. */
export function publishDetector(out: string, model: DETR, card: DetectorCard): void {
  saveTensors(checkpointPaths(join(out, 'model')).weights, model.stateDict(), { format: 'vit-dfkd', preset: card.preset });
  writeJsonAtomic(checkpointPaths(join(out, 'model')).config, card);
}

/** True if the model folder / checkpoint at `path` is a detector (its card says task 'detect'). */
export function isDetectorCheckpoint(path: string): boolean {
  const base = modelBasePath(path);
  if (!existsSync(checkpointPaths(base).config)) return false;
  return readCheckpointConfig<{ task?: string }>(base).task === 'detect';
}

/** Loads a detector saved by `dfkd train` (detection) or `dfkd distill --task detect`, in eval mode. */
export function loadDetector(path: string): { model: DETR; card: DetectorCard } {
  const base = modelBasePath(path);
  if (!existsSync(checkpointPaths(base).weights)) {
    throw new Error(`no detector at ${path}: expected ${checkpointPaths(base).weights} (a run folder made by dfkd train --dataset canvas-mnist …, or a checkpoint path)`);
  }
  const card = readCheckpointConfig<DetectorCard>(base);
  if (card.task !== 'detect' || typeof card.preset !== 'string') throw new Error(`${checkpointPaths(base).config} does not describe a detector (task ${JSON.stringify(card.task)})`);
  const model = createDetector(card.preset, card.overrides ?? {});
  loadCheckpointInto(base, model);
  model.eval();
  return { model, card };
}

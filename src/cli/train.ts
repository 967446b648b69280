// dfkd train / dfkd eval: supervised training runs and evaluation of saved classifiers.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset, withModelNormalization } from '../data/index.js';
import { createModel } from '../models/registry.js';
import { countFlops } from '../models/flops.js';
import type { Classifier } from '../models/types.js';
import { checkpointPaths, loadCheckpointInto } from '../export/checkpoint.js';
import { loadClassifier, loadTeacher, modelBasePath } from '../models/load.js';
import { importOptionsOf, type ImportCliOptions } from './import.js';
import { dispose, inferenceMode, manualSeed, randn, tidy, getNumThreads } from '../tensor/tensor.js';
import { normalize } from '../data/augment.js';
import { evaluateClassifier } from '../train/classifier.js';
import type { ModelCard } from '../models/load.js';
import { publishModel, trainRun, TRAIN_RUN_DEFAULTS, type TrainRunConfig } from '../train/run.js';
import { progressBar, say, speaksForRun } from './progress.js';
import type { TrainCliOptions } from './main.js';

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

export async function runTrainCommand(o: TrainCliOptions): Promise<void> {
  const overrides: Record<string, unknown> = {};
  if (o.dropPath !== undefined) overrides.dropPath = o.dropPath;
  const cfg: TrainRunConfig = {
    ...TRAIN_RUN_DEFAULTS,
    dataset: o.dataset,
    model: o.model,
    modelOverrides: overrides,
    epochs: o.epochs,
    batchSize: o.batch,
    lr: o.lr,
    weightDecay: o.weightDecay,
    schedule: o.schedule,
    warmupEpochs: o.warmupEpochs,
    labelSmoothing: o.labelSmoothing,
    translate: o.translate,
    flip: o.flip,
    clipNorm: o.clipNorm,
    seed: o.seed,
  };
  const train = loadDataset(o.dataset, 'train');
  const val = loadDataset(o.dataset, 'val');
  manualSeed(o.seed); // the initial weights are part of the run's seed
  const model = createModel(o.model, { ...overrides, numClasses: train.numClasses });
  checkCompatible(model, train.images.shape.slice(1), o.model, o.dataset);
  if (o.init !== undefined) cfg.init = initialiseFrom(o.init, model, o.model);
  say(`dfkd train: ${o.model} (${model.numParameters().toLocaleString()} params) on ${o.dataset} (${train.labels.size(0)} train / ${val.labels.size(0)} val), ${o.epochs} epochs, ${getNumThreads()} threads${cfg.init ? `, from ${o.init}` : ''} → ${o.out}`);
  const bar = progressBar('epoch {epochLabel}', 'loss {loss} | lr {lr} | {ips} img/s');
  const result = trainRun(cfg, o.out, model, { train, val }, {
    resume: o.resume,
    stopAfterEpochs: o.stopAfterEpochs,
    log: say,
    onStep: (s) =>
      bar.update(s.step, s.totalSteps, { epochLabel: `${s.epoch + 1}/${cfg.epochs}`, loss: s.loss.toFixed(3), lr: s.lr.toExponential(1), ips: Math.round(s.imagesPerSecond) }),
    onEpoch: (m) => process.stderr.write(`\nepoch ${m.epoch}: train loss ${m.train_loss.toFixed(4)}, val acc ${pct(m.val_acc)} (${m.seconds.toFixed(0)} s)\n`),
  });
  bar.stop();
  if (!speaksForRun()) return; // a data-parallel rank other than 0: rank 0 publishes
  if (result.epochs < cfg.epochs) {
    say(`stopped after epoch ${result.epochs}/${cfg.epochs}; continue with the same command and --resume`);
    return;
  }
  // The final figure: the best-by-validation checkpoint, on the test split, once.
  loadCheckpointInto(join(o.out, 'checkpoints', 'best'), model);
  const test = loadDataset(o.dataset, 'test');
  const testAcc = evaluateClassifier(model, test).accuracy;
  const card: ModelCard = {
    preset: o.model,
    overrides: { ...overrides, numClasses: train.numClasses },
    dataset: o.dataset,
    numClasses: train.numClasses,
    classNames: train.classNames,
    inputShape: train.images.shape.slice(1),
    mean: train.mean,
    std: train.std,
    val_acc: result.bestValAcc,
    test_acc: testAcc,
    params: model.numParameters(),
    train: cfg,
    command: `dfkd ${process.argv.slice(2).filter((a) => a !== '--resume' && a !== '--force').join(' ')}`,
    seconds: result.seconds,
    epochs: result.epochs,
  };
  publishModel(o.out, model, card);
  say(`best validation accuracy ${pct(result.bestValAcc)} (epoch ${result.bestEpoch}); test accuracy ${pct(testAcc)}; ${result.seconds.toFixed(0)} s`);
  say(`saved ${join(o.out, 'model.safetensors')}`);
}

/**
 * `--init`: the new run's weights are a saved classifier's (same preset, same shapes) — fine-tuning, or
 * a finished run continued with a fresh schedule. Recorded in the run's config with the weights file's
 * SHA-256 (and the command that made it), so `--resume` refuses another starting point.
 */
export function initialiseFrom(path: string, model: Classifier, preset: string): NonNullable<TrainRunConfig['init']> {
  const { model: src, card } = loadClassifier(path);
  try {
    if (card.preset !== preset) throw new Error(`--init ${path} is a ${card.preset} model; this run trains ${preset}`);
    try {
      model.loadStateDict(src.stateDict());
    } catch (e) {
      throw new Error(`--init ${path}: its weights do not fit ${preset} with these settings (${(e as Error).message})`);
    }
  } finally {
    dispose(src.stateDict());
  }
  const sha256 = createHash('sha256').update(readFileSync(checkpointPaths(modelBasePath(path)).weights)).digest('hex');
  // the command that made the starting model: with this run's own, the whole recipe
  return {
    path, sha256,
    ...(typeof card.command === 'string' ? { command: card.command } : {}),
    ...(typeof card.epochs === 'number' ? { epochs: card.epochs } : {}),
    ...(typeof card.seconds === 'number' ? { seconds: card.seconds } : {}),
    ...(typeof card.test_acc === 'number' ? { test_acc: card.test_acc } : {}),
  };
}

function checkCompatible(model: Classifier, dataShape: number[], preset: string, dataset: string): void {
  const want = model.inputShape;
  if (want.length !== dataShape.length || want.some((d, i) => d !== dataShape[i])) {
    throw new Error(`model ${preset} expects inputs [${want.join(', ')}] but ${dataset} images are [${dataShape.join(', ')}]`);
  }
}

export function runEvalCommand(o: { model: string; dataset?: string; split: 'train' | 'val' | 'test'; json: boolean } & ImportCliOptions): void {
  const { model, card } = loadTeacher(o.model, importOptionsOf(o));
  if (!o.dataset && !card.dataset) throw new Error(`${o.model} has no dataset of its own (an imported checkpoint): give --dataset`);
  // A folder of images has no normalisation of its own: it is evaluated with the model's.
  const spec = withModelNormalization(o.dataset || card.dataset, card.mean, card.std);
  const data = loadDataset(spec, o.split);
  checkCompatible(model, data.images.shape.slice(1), card.preset, spec);
  if (data.numClasses !== card.numClasses) throw new Error(`model has ${card.numClasses} classes but ${spec} has ${data.numClasses}`);
  const r = evaluateClassifier(model, data);
  const { flops } = countFlops(model);
  // Latency per image: batch 1, median of 50 after 5 warm-up runs.
  const x = randn([1, ...model.inputShape]);
  const times: number[] = [];
  inferenceMode(() => {
    for (let i = 0; i < 55; i++) {
      const t0 = performance.now();
      tidy(() => model.forward(normalize(x, data.mean, data.std)).logits);
      if (i >= 5) times.push(performance.now() - t0);
    }
  });
  x.dispose();
  times.sort((a, b) => a - b);
  const latencyMs = times[times.length >> 1]!;
  const result = {
    model: o.model, preset: card.preset, dataset: spec, split: o.split, accuracy: r.accuracy, correct: r.correct, total: r.total,
    per_class_accuracy: Object.fromEntries(data.classNames.map((c, i) => [c, r.perClassAccuracy[i]])),
    confusion: r.confusion, params: model.numParameters(), flops, latency_ms_batch1: latencyMs, threads: getNumThreads(),
  };
  if (o.json) {
    say(JSON.stringify(result, null, 2));
    return;
  }
  say(`${card.preset} on ${spec} (${o.split}): accuracy ${pct(r.accuracy)} (${r.correct}/${r.total})`);
  say(`params ${result.params.toLocaleString()}, ${(flops / 1e6).toFixed(1)} MFLOPs per image, latency ${latencyMs.toFixed(2)} ms per image (batch 1, ${getNumThreads()} threads)`);
  say('per-class accuracy:');
  for (const [i, c] of data.classNames.entries()) say(`  ${c.padEnd(12)} ${pct(r.perClassAccuracy[i]!)}`);
  say('confusion matrix (rows: true class, columns: predicted):');
  const w = Math.max(4, ...r.confusion.flat().map((v) => String(v).length + 1));
  say(`${''.padStart(4)}${data.classNames.map((_, i) => String(i).padStart(w)).join('')}`);
  for (const [i, row] of r.confusion.entries()) say(`${String(i).padStart(4)}${row.map((v) => String(v).padStart(w)).join('')}`);
}

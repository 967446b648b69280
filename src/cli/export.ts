// dfkd export: a trained model (classifier or DETR detector) → an ONNX file, checked in ONNX Runtime
// before it is written.
import { existsSync } from 'node:fs';
import { loadClassifier, modelBasePath } from '../models/load.js';
import { loadDataset } from '../data/index.js';
import { loadDetectionDataset } from '../data/detection.js';
import { checkpointPaths, loadCheckpointInto, readCheckpointConfig } from '../export/checkpoint.js';
import { createDetector, type DETR, type DetrConfig } from '../models/detr.js';
import { detectorToOnnx, type DetectorExportCard } from '../export/onnx-detr.js';
import { rand, type Tensor } from '../tensor/tensor.js';
import { classifierToOnnx } from '../export/onnx.js';
import { classifierParity, detectorParity, evaluateOnnx, evaluateOnnxDetector, loadOnnx, torchPredictions, type ParityResult } from '../export/ort.js';
import { evaluateDetector, predict } from '../detect/evaluate.js';
import { evaluateClassifier } from '../train/classifier.js';
import { writeFileAtomic } from '../util/fs.js';
import { DEFAULT_CALIBRATION_IMAGES, runFolderOf, syntheticCalibrationSet, type CalibrationSource } from '../export/calibration.js';
import { quantizeOnnxInt8, withMetadata, WEIGHT_QMAX, WEIGHT_QMAX_REDUCED } from '../export/quantize.js';
import { maxAbsDiff, ortOptimizedNodes, ortSessionRecord, runOnnx, type LoadedOnnx } from '../export/ort.js';
import type { Classifier } from '../models/types.js';
import type { ModelCard } from '../models/load.js';
import { progressBar } from './progress.js';

export interface ExportCliOptions {
  model: string;
  onnx: string;
  opset: number;
  dynamicBatch: boolean;
  batch: number;
  foldNormalization: boolean;
  attention: boolean;
  verify: number;
  tolerance: number;
  eval: boolean;
  json: boolean;
  /** 'int8': static QDQ quantisation calibrated on synthetic images (quantize.ts, calibration.ts). */
  quantize?: string;
  /** The run whose generator / image bank gives the calibration images (default: the model's own run). */
  calibrateFrom?: string;
  calibrationImages?: number;
  calibrationSeed?: number;
  /** Also quantise the ViT's attention products (q·kᵀ, softmax·v). */
  quantizeAttention?: boolean;
  /** 7-bit weights (default true): exact on AVX2 machines without VNNI, where 8-bit U8S8 products saturate. */
  reduceRange?: boolean;
}

/** What --quantize int8 reports (and records in the model's metadata). */
export interface Int8Report {
  calibration: CalibrationSource;
  quantized: Record<string, number>;
  weight_bits: number;
  bytes_float: number;
  bytes_int8: number;
  size_ratio: number;
  /** On the real test split, through ONNX Runtime (evaluation only: calibration never sees it). */
  test_images: number;
  test_acc_float: number;
  test_acc_int8: number;
  int8_vs_float: number;
  predictions_differ: number;
  max_abs_logits: number;
}

/**
 * The int8 model of an exported classifier: calibrated on synthetic images of `run` (the model's own
 * run folder unless --calibrate-from), evaluated beside the float model on the real test split.
 */
async function quantizeClassifier(o: ExportCliOptions, model: Classifier, card: ModelCard, floatBytes: Uint8Array, floatLoaded: LoadedOnnx): Promise<{ bytes: Uint8Array; report: Int8Report }> {
  if (o.quantize !== 'int8') throw new Error(`--quantize ${o.quantize}: only int8 is supported`);
  const run = o.calibrateFrom ?? runFolderOf(o.model);
  if (!run) {
    throw new Error(`--quantize int8: ${o.model} is not in a distillation run folder, so there is no generator to calibrate from; give --calibrate-from <run folder made by dfkd distill> (calibration uses synthetic images only)`);
  }
  const cal = syntheticCalibrationSet(run, { count: o.calibrationImages ?? DEFAULT_CALIBRATION_IMAGES, seed: o.calibrationSeed ?? 0 });
  let q: Awaited<ReturnType<typeof quantizeOnnxInt8>>;
  try {
    const [, c, h, w] = cal.images.shape;
    const [ec, eh, ew] = model.inputShape;
    if (c !== ec || h !== eh || w !== ew) throw new Error(`--calibrate-from ${run}: its generator makes [${c}, ${h}, ${w}] images, the model takes [${ec}, ${eh}, ${ew}]`);
    q = await quantizeOnnxInt8(floatBytes, cal.images, { attentionMatMuls: o.quantizeAttention ?? false, reduceRange: o.reduceRange ?? true });
  } finally {
    cal.images.dispose();
  }
  // Evaluation only, after calibration: the real test split never reaches the quantiser.
  const test = loadDataset(card.dataset, 'test');
  const int8Loaded = await loadOnnx(q.bytes, { threads: 1 });
  try {
    const f = await evaluateOnnx(floatLoaded, test);
    const i = await evaluateOnnx(int8Loaded, test);
    const lf = await runOnnx(floatLoaded, test.images);
    const li = await runOnnx(int8Loaded, test.images);
    const report: Int8Report = {
      calibration: cal.source,
      quantized: q.plan.counts,
      weight_bits: (o.reduceRange ?? true) ? Math.log2(WEIGHT_QMAX_REDUCED + 1) + 1 : Math.log2(WEIGHT_QMAX + 1) + 1,
      bytes_float: floatBytes.length,
      bytes_int8: 0,
      size_ratio: 0,
      test_images: f.total,
      test_acc_float: f.accuracy,
      test_acc_int8: i.accuracy,
      int8_vs_float: i.accuracy / f.accuracy,
      predictions_differ: f.predictions.filter((p, k) => p !== i.predictions[k]).length,
      max_abs_logits: maxAbsDiff(lf.logits!.data, li.logits!.data),
    };
    const props = (r: Int8Report): Record<string, string> => ({
      'vit_dfkd.quantization': `int8 QDQ: ${r.weight_bits}-bit symmetric per-channel weights, uint8 per-tensor activations (min/max), Conv/Gemm/MatMul${o.quantizeAttention ? ' and attention MatMuls' : ''}; LayerNorm, Softmax, GELU in float`,
      'vit_dfkd.calibration': JSON.stringify(r.calibration),
      'vit_dfkd.test_acc_float': String(r.test_acc_float),
      'vit_dfkd.test_acc_int8': String(r.test_acc_int8),
      'vit_dfkd.bytes_float': String(r.bytes_float),
    });
    // The size with the metadata in it (the figures do not change the graph; two passes fix the byte count).
    let bytes = withMetadata(q.bytes, props(report));
    report.bytes_int8 = bytes.length;
    report.size_ratio = floatBytes.length / bytes.length;
    bytes = withMetadata(q.bytes, props(report));
    return { bytes, report };
  } finally {
    await int8Loaded.session.release();
    test.images.dispose();
    test.labels.dispose();
  }
}

const say = (s: string): void => void process.stdout.write(`${s}\n`);
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

/** The card beside a saved model, if any (detectors say task 'detect'). */
function savedCard(path: string): { task?: string } | null {
  const base = modelBasePath(path);
  return existsSync(checkpointPaths(base).config) ? readCheckpointConfig<{ task?: string }>(base) : null;
}

/** A DETR saved by detection training (card with task 'detect'), in eval mode. */
function loadSavedDetector(path: string): { model: DETR; card: DetectorExportCard & { overrides?: Partial<DetrConfig> } } {
  const base = modelBasePath(path);
  const card = readCheckpointConfig<DetectorExportCard & { overrides?: Partial<DetrConfig> }>(base);
  if (typeof card.preset !== 'string') throw new Error(`${checkpointPaths(base).config} does not describe a detector (no "preset")`);
  const model = createDetector(card.preset, card.overrides ?? {});
  loadCheckpointInto(base, model);
  model.eval();
  return { model, card };
}

async function exportDetector(o: ExportCliOptions): Promise<void> {
  const { model, card } = loadSavedDetector(o.model);
  const { bytes, info } = detectorToOnnx(model, card, { opset: o.opset, dynamicBatch: o.dynamicBatch, batch: o.batch, foldNormalization: o.foldNormalization });
  const loaded = await loadOnnx(bytes, { threads: 1 });
  const report: Record<string, unknown> = { model: o.model, onnx: o.onnx, ...info };
  if (o.verify > 0) {
    let images: Tensor;
    let source: string;
    try {
      const test = loadDetectionDataset(card.dataset ?? '', 'test');
      const n = Math.min(o.verify, test.images.size(0));
      images = test.images.narrow(0, 0, n);
      source = `${n} ${card.dataset} test images`;
    } catch (e) {
      images = rand([o.verify, ...model.inputShape]);
      source = `${o.verify} uniform-noise images (dataset '${card.dataset}' not available: ${(e as Error).message})`;
    }
    const parity = { ...(await detectorParity(model, loaded, images)), source };
    images.dispose();
    report.parity = parity;
    if (!(Math.max(parity.maxAbsLogits, parity.maxAbsBoxes) <= o.tolerance)) {
      throw new Error(`ONNX Runtime and libtorch disagree: max |Δlogits| ${parity.maxAbsLogits.toExponential(2)}, max |Δboxes| ${parity.maxAbsBoxes.toExponential(2)} > ${o.tolerance} on ${source}; nothing written`);
    }
  }
  writeFileAtomic(o.onnx, bytes);
  if (o.eval) {
    const data = loadDetectionDataset(card.dataset ?? '', 'test');
    const ortEval = await evaluateOnnxDetector(loaded, data);
    const torchEval = evaluateDetector(model, data);
    const torchPred = predict(model, data);
    const labelsDiffer = ortEval.predictions.reduce((a, ps, i) => a + ps.filter((p, q) => p.label !== torchPred[i]![q]!.label).length, 0);
    report.eval = {
      dataset: card.dataset, split: 'test', images: ortEval.images,
      onnxruntime_map: ortEval.map, vit_dfkd_map: torchEval.map, onnxruntime_ap50: ortEval.ap50, vit_dfkd_ap50: torchEval.ap50, query_labels_differ: labelsDiffer,
    };
    data.images.dispose();
  }
  await loaded.session.release();
  if (o.json) {
    say(JSON.stringify(report, null, 2));
    return;
  }
  say(`wrote ${o.onnx}: ${card.preset} (detr), opset ${info.opset}, ${info.nodes} nodes, ${info.parameters.toLocaleString()} parameters, ${(info.bytes / 1024).toFixed(1)} KiB`);
  for (const v of info.inputs) say(`  input  ${v.name} [${v.dims.join(', ')}] (${info.metadata['vit_dfkd.input']})`);
  for (const v of info.outputs) say(`  output ${v.name} [${v.dims.join(', ')}]`);
  const p = report.parity as { source: string; maxAbsLogits: number; maxAbsBoxes: number } | undefined;
  if (p) say(`parity vs libtorch on ${p.source}: max |Δlogits| ${p.maxAbsLogits.toExponential(2)}, max |Δboxes| ${p.maxAbsBoxes.toExponential(2)} (tolerance ${o.tolerance})`);
  const ev = report.eval as { images: number; onnxruntime_map: number; vit_dfkd_map: number; onnxruntime_ap50: number; vit_dfkd_ap50: number; query_labels_differ: number } | undefined;
  if (ev) {
    say(`test mAP@[.5:.95] (${ev.images} images): ONNX Runtime ${ev.onnxruntime_map.toFixed(4)}, vit-dfkd ${ev.vit_dfkd_map.toFixed(4)}; ` +
      `AP50 ${ev.onnxruntime_ap50.toFixed(4)} vs ${ev.vit_dfkd_ap50.toFixed(4)}; ${ev.query_labels_differ} query labels differ`);
  }
}

export async function runExportCommand(o: ExportCliOptions): Promise<void> {
  if (!o.onnx.endsWith('.onnx')) throw new Error(`--onnx ${o.onnx}: the output file name must end in .onnx`);
  if (savedCard(o.model)?.task === 'detect') {
    if (o.quantize) throw new Error('--quantize int8 is for classifiers; detectors export in float');
    return exportDetector(o);
  }
  if (o.quantize !== undefined && o.quantize !== 'int8') throw new Error(`--quantize ${o.quantize}: only int8 is supported`);
  const { model, card } = loadClassifier(o.model);
  const { bytes, info } = classifierToOnnx(model, card, {
    opset: o.opset, dynamicBatch: o.dynamicBatch, batch: o.batch, foldNormalization: o.foldNormalization, attention: o.attention,
  });
  // Loading in ONNX Runtime checks the graph against the operator schemas (types, shapes, attributes),
  // with the session options of bench infer (ORT_SESSION_DEFAULTS: graph optimisation 'all', 1 thread):
  // the parity below is that of the optimised graph ORT runs, recorded with its node count.
  const loaded = await loadOnnx(bytes, { threads: 1 });
  const report: Record<string, unknown> = { model: o.model, onnx: o.onnx, ...info };
  const ortRun = { ...ortSessionRecord({ threads: 1 }), nodes: (await ortOptimizedNodes(bytes)).nodes };
  report.onnxruntime = ortRun;

  let parity: (ParityResult & { source: string }) | undefined;
  if (o.verify > 0) {
    // Real test images when the model's dataset is here; uniform noise images otherwise (said).
    let images: Tensor;
    let source: string;
    let test: ReturnType<typeof loadDataset> | undefined;
    try {
      test = loadDataset(card.dataset, 'test');
      const n = Math.min(o.verify, test.labels.size(0));
      images = test.images.narrow(0, 0, n);
      source = `${n} ${card.dataset} test images`;
    } catch (e) {
      images = rand([o.verify, ...model.inputShape]);
      source = `${o.verify} uniform-noise images (dataset '${card.dataset}' not available: ${(e as Error).message})`;
    }
    parity = { ...(await classifierParity(model, loaded, images)), source };
    images.dispose();
    test?.images.dispose();
    test?.labels.dispose();
    report.parity = parity;
    const worst = Math.max(parity.maxAbsLogits, parity.maxAbsAttention ?? 0);
    if (!(worst <= o.tolerance)) {
      throw new Error(`ONNX Runtime and libtorch disagree: max |Δlogits| ${parity.maxAbsLogits.toExponential(2)}${parity.maxAbsAttention !== undefined ? `, max |Δattention| ${parity.maxAbsAttention.toExponential(2)}` : ''} > ${o.tolerance} on ${source}; nothing written`);
    }
  }
  let int8: Int8Report | undefined;
  let written = bytes;
  if (o.quantize) {
    const q = await quantizeClassifier(o, model, card, bytes, loaded);
    int8 = q.report;
    written = q.bytes;
    report.int8 = int8;
  }
  writeFileAtomic(o.onnx, written);

  if (o.eval) {
    const data = loadDataset(card.dataset, 'test');
    const bar = progressBar('ONNX Runtime eval', 'images');
    const ortEval = await evaluateOnnx(loaded, data, { onProgress: (d, t) => bar.update(d, t, {}) });
    bar.stop();
    const torchEval = evaluateClassifier(model, data);
    const torchPred = torchPredictions(model, data);
    const differ = ortEval.predictions.filter((p, i) => p !== torchPred[i]).length;
    report.eval = {
      dataset: card.dataset, split: 'test', images: ortEval.total,
      onnxruntime_accuracy: ortEval.accuracy, vit_dfkd_accuracy: torchEval.accuracy, predictions_differ: differ,
    };
    data.images.dispose();
    data.labels.dispose();
  }
  await loaded.session.release();

  if (o.json) {
    say(JSON.stringify(report, null, 2));
    return;
  }
  say(`wrote ${o.onnx}: ${card.preset} (${info.family}${int8 ? ', int8' : ''}), opset ${info.opset}, ${info.nodes} float nodes, ${info.parameters.toLocaleString()} parameters, ${(written.length / 1024).toFixed(1)} KiB`);
  say(`  ONNX Runtime check: graph optimisation '${ortRun.graph_optimization}', ${ortRun.intra_op_threads} thread: ${ortRun.nodes} nodes after optimisation (float graph)`);
  for (const v of info.inputs) say(`  input  ${v.name} [${v.dims.join(', ')}] (${info.metadata['vit_dfkd.input']})`);
  for (const v of info.outputs) say(`  output ${v.name} [${v.dims.join(', ')}]`);
  if (parity) {
    say(`parity vs libtorch on ${parity.source}: max |Δlogits| ${parity.maxAbsLogits.toExponential(2)}` +
      `${parity.maxAbsAttention !== undefined ? `, max |Δattention| ${parity.maxAbsAttention.toExponential(2)}` : ''}, ` +
      `${parity.argmaxDisagreements} different predictions (tolerance ${o.tolerance})`);
  }
  const ev = report.eval as { images: number; onnxruntime_accuracy: number; vit_dfkd_accuracy: number; predictions_differ: number } | undefined;
  if (ev) {
    say(`test accuracy (${ev.images} images): ONNX Runtime ${pct(ev.onnxruntime_accuracy)}, vit-dfkd ${pct(ev.vit_dfkd_accuracy)}; ${ev.predictions_differ} predictions differ`);
  }
  if (int8) {
    const c = int8.calibration;
    const n = int8.quantized;
    say(`int8 (QDQ; ${int8.weight_bits}-bit per-channel weights, uint8 per-tensor activations): ${n.Conv} Conv, ${n.Gemm} Gemm, ${n.MatMul} MatMul${n.attentionMatMul ? ` + ${n.attentionMatMul} attention MatMul` : ''} quantised`);
    say(`  calibrated on ${c.images} synthetic images of ${c.run} (${c.method}, checkpoint iteration ${c.iteration}, seed ${c.seed}: ${c.from_preview} preview + ${c.from_synthesize} synthesised); no real image`);
    say(`  test accuracy (${int8.test_images} real test images, ONNX Runtime): float ${pct(int8.test_acc_float)}, int8 ${pct(int8.test_acc_int8)} (${pct(int8.int8_vs_float)} of float); ${int8.predictions_differ} predictions differ, max |Δlogits| ${int8.max_abs_logits.toFixed(3)}`);
    say(`  size: float ${(int8.bytes_float / 1024).toFixed(1)} KiB, int8 ${(int8.bytes_int8 / 1024).toFixed(1)} KiB (${int8.size_ratio.toFixed(2)}× smaller)`);
  }
}

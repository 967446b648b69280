// The detection distillation loop and run, shaped like distill/loop.ts and distill/run.ts (same
// config fields, checkpoints, resume, metrics.jsonl, samples/, result.json, report.html): per
// iteration one synthesis step and k student steps on the teacher's pseudo-targets; the student's
// mAP on the real validation canvases every `evalEvery` iterations (evaluation only); sample grids
// with the teacher's confident boxes drawn; checkpoints with an exact --resume (libtorch's generator
// re-seeded from (seed, iteration) at every iteration); a NaN loss stops with the last checkpoint intact.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, getNumThreads, inferenceMode, manualSeed, noGrad, tidy, type Tensor } from '../../tensor/tensor.js';
import { GeneratorProcess } from './feed.js';
import { Adam } from '../../nn/optim.js';
import { clipGradNorm } from '../../nn/clip.js';
import { denormalize } from '../../data/augment.js';
import { loadDetectionDataset, type DetectionDataset } from '../../data/detection.js';
import { checkpointPaths, saveTensors } from '../../export/checkpoint.js';
import { writeJsonAtomic } from '../../util/fs.js';
import { dataParallel, rankBatch } from '../../dist/data-parallel.js';
import { createDetector, describeDetector, DETR, DETR_PRESETS, isDetectorPreset } from '../../models/detr.js';
import { NaNLossError, runBudgetedLoop, type DriverResult, type LoopConfig } from '../../distill/driver.js';
import { drawBoxes, savePng } from '../../report/png.js';
import { evaluateDetector, postprocess, predictionBoxes } from '../evaluate.js';
import { loadDetector, type DetectorCard } from '../run.js';
import { studentDetectionLoss } from './losses.js';
import { DenseTokenHead } from '../dense.js';
import { Linear } from '../../nn/layers.js';
import type { Module } from '../../nn/module.js';
import { canSelectWeights, selectWeights } from '../../distill/init.js';
import { createDetectMethod, DETECT_METHODS, type DetectDistillContext, type DetectDistillMethod } from './methods.js';

export interface DetectLoopHooks {
  onIteration?: (it: number, total: number, logs: Record<string, number>, seconds: number) => void;
  onEval?: (row: Record<string, number>) => void;
  log?: (line: string) => void;
}

/** Freezes a detector: eval mode, no parameter gradients (inputs still get them). */
export function freezeDetector(m: DETR): void {
  m.eval();
  for (const p of m.parameters()) p.requiresGrad = false;
}

/** One student step on canvases x: teacher outputs as constants, the shared student objective. */
export function detectStudentStep(ctx: DetectDistillContext, method: DetectDistillMethod, opt: Adam, x: Tensor, clipNorm: number, extra: StudentExtras = {}): Record<string, number> {
  return tidy(() => {
    const t = noGrad(() => ctx.teacher.forward(x));
    const s = ctx.student.forward(x);
    const { loss, logs } = studentDetectionLoss(t, s, method.student, extra.dense, extra.adapter);
    const v = loss.item();
    if (!Number.isFinite(v)) throw new NaNLossError(`the student loss is ${v} (${method.name})`);
    opt.zeroGrad();
    loss.backward();
    if (clipNorm > 0) clipGradNorm(studentParameters(ctx, extra), clipNorm);
    opt.step();
    return logs;
  });
}

/** Training-only heads of the student objective: the dense token head, the feature adapter. */
export interface StudentExtras {
  dense?: DenseTokenHead;
  adapter?: Linear;
}

function studentParameters(ctx: DetectDistillContext, extra: StudentExtras): Tensor[] {
  return [...ctx.student.parameters(), ...Object.values(extra).flatMap((m: Module) => m.parameters())];
}

export function detectDistillLoop(
  ctx: DetectDistillContext,
  method: DetectDistillMethod,
  cfg: LoopConfig,
  out: string,
  val: DetectionDataset,
  opts: { resume?: boolean; generatorProcess?: DetectDistillConfig } & DetectLoopHooks = {},
): DriverResult {
  freezeDetector(ctx.teacher);
  // --generator-process: the canvases (and the synthesis logs) come from a second process running
  // this same method; this process's copy of the method only takes the producer's state for
  // checkpoints and sample grids.
  const feed = opts.generatorProcess
    ? new GeneratorProcess({ dir: join(out, 'feed'), cfg: opts.generatorProcess, threads: getNumThreads(), ahead: 4 }, join(out, 'checkpoints', 'last'))
    : null;
  let synced = -1;
  const syncMethod = (n: number): void => {
    if (!feed || synced === n) return;
    const s = feed.methodState(n);
    if (s) {
      method.loadStateDict(s);
      dispose(s.tensors);
    }
    synced = n;
  };
  ctx.student.train();
  const baseLr = cfg.studentLr ?? method.studentLr;
  // The dense token head and the feature adapter are training-only: their weights live in
  // checkpoints/last (under dense. / adapter.), not in the student.
  const extra: StudentExtras = {};
  if ((method.student.denseWeight ?? 0) > 0) extra.dense = new DenseTokenHead(ctx.student.config.dim, ctx.numClasses);
  if ((method.student.featWeight ?? 0) > 0) extra.adapter = new Linear(ctx.student.config.dim, ctx.teacher.config.dim);
  const opt = new Adam(studentParameters(ctx, extra), { lr: baseLr });
  try {
    return runBudgetedLoop(cfg, out, { model: ctx.student, opt, method, extra: { ...extra } }, {
      baseLr,
      resume: opts.resume,
      log: opts.log,
      onIteration: opts.onIteration,
      onEval: opts.onEval,
      synthesize: (it) => (feed ? { ...feed.batch(it, 0), it } : { ...method.synthesize(ctx, it), it }),
      studentSteps: method.studentStepsPerIteration,
      studentStep: (batch, k) =>
        tidy(() => {
          const x = k > 0 && method.extraBatch ? (feed ? feed.batch(batch.it, k).x : method.extraBatch(ctx, k)) : batch.x;
          return detectStudentStep(ctx, method, opt, x, cfg.clipNorm, extra);
        }),
      syncMethod,
      evaluate: () => {
        const r = evaluateDetector(ctx.student, val);
        return { val_map: r.map, val_ap50: r.ap50 };
      },
      samples: (iteration) => writeDetectionSamples(ctx, method, out, iteration),
    });
  } finally {
    if (feed) {
      if (feed.started) opts.log?.(`generator process: the training process waited ${feed.waitedSeconds.toFixed(0)} s for canvases`);
      feed.close();
    }
    for (const m of Object.values(extra) as Module[]) m.dispose();
  }
}

/** samples/iter-NNNNNN.png: 16 preview canvases with the teacher's confident detections drawn. */
export function writeDetectionSamples(ctx: DetectDistillContext, method: DetectDistillMethod, out: string, iteration: number): void {
  tidy(() => {
    const x = inferenceMode(() => method.previewBatch(ctx, 16));
    const preds = inferenceMode(() => {
      const o = ctx.teacher.forward(x);
      return postprocess(o.logits, o.boxes);
    });
    const pixels = denormalize(x, ctx.mean, ctx.std).clamp(0, 1);
    const names = Array.from({ length: ctx.numClasses }, (_, i) => String(i));
    const png = drawBoxes(pixels, preds.map((p) => predictionBoxes(p, names, method.student.threshold)), { normalized: true, showLabels: true, scale: 2, cols: 8 });
    savePng(join(out, 'samples', `iter-${String(iteration).padStart(6, '0')}.png`), png);
  });
}

export interface DetectDistillConfig {
  task: 'detect';
  teacher: string;
  student: string;
  method: string;
  hparams: Record<string, number>;
  loop: LoopConfig;
  /**
   * The student's initial weights: 'select' — weight selection from the teacher (distill/init.ts; data-free:
   * it reads only the teacher's weights), 'random', or 'auto' (select when every student parameter has a
   * larger same-named teacher parameter, as for the two DETR presets).
   */
  studentInit?: 'auto' | 'select' | 'random';
  /** Run the synthesis in a second process (feed.ts); needs a method whose synthesis does not read the student. */
  generatorProcess?: boolean;
}

export interface DetectDistillResult {
  task: 'detect';
  method: string;
  teacher: string;
  student: string;
  dataset: string;
  test_map: number;
  test_ap50: number;
  teacher_test_map: number;
  teacher_test_ap50: number;
  map_retention: number;
  val_map: number;
  seconds: number;
  iterations: number;
  iterations_per_second: number;
  stopped_by: string;
  student_params: number;
  teacher_params: number;
  student_flops: number;
  teacher_flops: number;
  data_free: boolean;
}

/** The checks that need nothing loaded (method, teacher path, student preset): run before any output is written. */
export function checkDetectRunInputs(cfg: Pick<DetectDistillConfig, 'method' | 'teacher' | 'student'>): void {
  if (!DETECT_METHODS[cfg.method]) throw new Error(`unknown detection method '${cfg.method}'; available: ${Object.keys(DETECT_METHODS).join(', ')}`);
  if (!existsSync(cfg.teacher)) throw new Error(`teacher not found: ${cfg.teacher} (a run folder made by dfkd train on a detection dataset)`);
  if (!isDetectorPreset(cfg.student)) throw new Error(`unknown detector preset '${cfg.student}'; available: ${Object.keys(DETR_PRESETS).join(', ')}`);
}

/**
 * Teacher, student (weight selection per cfg.studentInit), context and method, built in one fixed
 * order from the run's seed — shared by the run and its generator process (feed.ts), whose canvases
 * must be the ones this process would have made.
 */
export function prepareDetectRun(cfg: DetectDistillConfig, log?: (line: string) => void, batchSize = cfg.loop.batchSize): { card: DetectorCard; ctx: DetectDistillContext; method: DetectDistillMethod; overrides: { numClasses: number; inChannels: number; imageSize: number } } {
  checkDetectRunInputs(cfg);
  const spec = DETECT_METHODS[cfg.method]!;
  const { model: teacher, card } = loadDetector(cfg.teacher);
  manualSeed(cfg.loop.seed);
  const overrides = { numClasses: card.numClasses, inChannels: teacher.config.inChannels, imageSize: teacher.config.imageSize };
  const student = createDetector(cfg.student, overrides);
  const init = cfg.studentInit ?? 'auto';
  if (init === 'select' || (init === 'auto' && canSelectWeights(teacher, student))) {
    const r = selectWeights(teacher, student);
    if (Object.keys(r.selected).length === 0) throw new Error(`--student-init select: no parameter of ${cfg.student} matches the teacher's (${cfg.teacher})`);
    log?.(`student init: ${Object.keys(r.selected).length} tensors selected from the teacher, ${Object.keys(r.kept).length} kept random`);
  }
  const ctx: DetectDistillContext = {
    teacher, student, inputShape: teacher.inputShape, numClasses: card.numClasses, mean: card.mean, std: card.std, batchSize,
    realTrain: spec.dataFree ? undefined : loadDetectionDataset(card.dataset, 'train'),
  };
  const method = createDetectMethod(cfg.method, ctx, cfg.hparams);
  if (cfg.generatorProcess && !method.studentFreeSynthesis) {
    method.dispose();
    throw new Error(`--generator-process: ${cfg.method}'s synthesis ${cfg.method === 'tgan' ? 'reads the student at --lambda-adv > 0' : 'reads the student or the real data'}; it needs a synthesis that does not (tgan at --lambda-adv 0)`);
  }
  freezeDetector(teacher);
  return { card, ctx, method, overrides };
}

/**
 * The whole run. Data-parallel (src/dist/data-parallel.ts): `cfg.loop.batchSize` is the global batch,
 * each rank synthesises its share; rank 0 alone evaluates and writes the result and the student; the
 * other ranks return null.
 */
export function runDetectDistillation(cfg: DetectDistillConfig, out: string, opts: { resume?: boolean } & DetectLoopHooks = {}): DetectDistillResult | null {
  const dp = dataParallel();
  if (dp && cfg.generatorProcess) throw new Error('--generator-process and data-parallel ranks do not go together: give the ranks the cores instead');
  const split = rankBatch(cfg.loop.batchSize, out, opts.resume);
  const { card, ctx, method, overrides } = prepareDetectRun(cfg, opts.log, split.batch);
  const { teacher, student } = ctx;
  const val = loadDetectionDataset(card.dataset, 'val');
  writeJsonAtomic(join(out, 'config.json'), { ...cfg, method_hparams: method.hparams, dataset: card.dataset, ...split.config });
  const loop = detectDistillLoop(ctx, method, cfg.loop, out, val, { ...opts, generatorProcess: cfg.generatorProcess ? cfg : undefined });
  method.dispose();
  if (dp && !dp.isMain) return null;
  student.eval();
  const test = loadDetectionDataset(card.dataset, 'test');
  const s = evaluateDetector(student, test);
  const t = evaluateDetector(teacher, test);
  const v = evaluateDetector(student, val);
  const result: DetectDistillResult = {
    task: 'detect', method: cfg.method, teacher: cfg.teacher, student: cfg.student, dataset: card.dataset,
    test_map: s.map, test_ap50: s.ap50, teacher_test_map: t.map, teacher_test_ap50: t.ap50, map_retention: t.map > 0 ? s.map / t.map : 0, val_map: v.map,
    seconds: loop.seconds, iterations: loop.iterations, iterations_per_second: loop.iterations / Math.max(1e-9, loop.seconds), stopped_by: loop.stoppedBy,
    student_params: student.numParameters(), teacher_params: teacher.numParameters(),
    student_flops: describeDetector(cfg.student, overrides).flops, teacher_flops: describeDetector(card.preset, card.overrides).flops,
    data_free: DETECT_METHODS[cfg.method]!.dataFree,
  };
  writeJsonAtomic(join(out, 'result.json'), result);
  const studentCard: DetectorCard = {
    task: 'detect', preset: cfg.student, overrides, dataset: card.dataset, numClasses: card.numClasses, classNames: card.classNames,
    inputShape: card.inputShape, mean: card.mean, std: card.std, val_map: v.map, test_map: s.map, test_ap50: s.ap50,
    params: result.student_params, flops: result.student_flops, distilled_from: cfg.teacher, method: cfg.method, seconds: loop.seconds,
  };
  saveTensors(checkpointPaths(join(out, 'model')).weights, student.stateDict(), { format: 'vit-dfkd', preset: cfg.student });
  writeJsonAtomic(checkpointPaths(join(out, 'model')).config, studentCard);
  return result;
}

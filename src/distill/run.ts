// A distillation run: load the teacher, build the student and the method, run the loop, then the
// final figures (the student's and the teacher's accuracy on the real TEST split, once, at the end),
// result.json, and the student as model.{safetensors,json} in the run folder.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset } from '../data/index.js';
import { loadClassifier, type ModelCard } from '../models/load.js';
import { createModel, PRESETS, UnknownPresetError } from '../models/registry.js';
import { countFlops } from '../models/flops.js';
import type { Classifier } from '../models/types.js';
import { saveTensors, checkpointPaths } from '../export/checkpoint.js';
import { manualSeed } from '../tensor/tensor.js';
import { writeJsonAtomic } from '../util/fs.js';
import { evaluateClassifier } from '../train/classifier.js';
import { distillLoop, type LoopConfig, type LoopHooks } from './loop.js';
import { createMethod, METHODS } from './methods/index.js';
import type { DistillContext } from './types.js';
import { canSelectWeights, selectWeights } from './init.js';
import type { Module } from '../nn/module.js';
import { collapseSummary, type CollapseSummary } from './collapse.js';
import { dataParallel, rankBatch } from '../dist/data-parallel.js';

export type StudentInit = 'random' | 'select' | 'auto';

export interface DistillRunConfig {
  teacher: string;
  student: string;
  method: string;
  /** Method hyper-parameter overrides (each a CLI flag). */
  hparams: Record<string, number | boolean>;
  loop: LoopConfig;
  /**
   * The student's initial weights: random (the preset's init), select (weight selection from the
   * teacher's, init.ts), or auto (default): select when the student is the teacher's family (every
   * student tensor has a teacher tensor at least as large), random otherwise and for `scratch`.
   */
  studentInit?: StudentInit;
}

export interface DistillResult {
  method: string;
  teacher: string;
  student: string;
  dataset: string;
  test_acc: number;
  teacher_test_acc: number;
  retention: number;
  val_acc: number;
  seconds: number;
  iterations: number;
  iterations_per_second: number;
  stopped_by: string;
  student_params: number;
  teacher_params: number;
  student_flops: number;
  teacher_flops: number;
  data_free: boolean;
  /** How the student started: random, or weight selection from the teacher. */
  student_init: 'random' | 'select';
  /** The collapse guard over the run's metrics rows (collapse.ts). */
  collapse: CollapseSummary;
}

export function checkStudentFits(teacher: Classifier, student: Classifier, studentName: string, teacherPath: string): void {
  const a = teacher.inputShape;
  const b = student.inputShape;
  if (a.some((d, i) => d !== b[i])) {
    throw new Error(`student ${studentName} takes inputs [${b.join(', ')}] but the teacher ${teacherPath} takes [${a.join(', ')}]`);
  }
  if (teacher.numClasses !== student.numClasses) {
    throw new Error(`student ${studentName} has ${student.numClasses} classes but the teacher ${teacherPath} has ${teacher.numClasses}`);
  }
}

/** What `auto` means for this pair: weight selection for a same-family student of a non-`scratch` run. */
export function resolveStudentInit(how: StudentInit, method: string, teacher: Classifier, student: Classifier): 'random' | 'select' {
  if (how !== 'auto') return how;
  if (method === 'scratch') return 'random';
  return canSelectWeights(teacher as unknown as Module, student as unknown as Module) ? 'select' : 'random';
}

/** The checks that need nothing loaded (the method, the teacher path, the student preset): run before any output is written. */
export function checkRunInputs(cfg: Pick<DistillRunConfig, 'method' | 'teacher' | 'student'>): void {
  if (!METHODS[cfg.method]) throw new Error(`unknown method '${cfg.method}'; available: ${Object.keys(METHODS).join(', ')}`);
  if (!existsSync(cfg.teacher)) throw new Error(`teacher not found: ${cfg.teacher} (a run folder made by dfkd train, or a .safetensors checkpoint with its .json)`);
  if (!Object.prototype.hasOwnProperty.call(PRESETS, cfg.student)) throw new UnknownPresetError(cfg.student);
}

/**
 * The whole run. Data-parallel (src/dist/data-parallel.ts): `cfg.loop.batchSize` is the global batch,
 * each rank synthesises batchSize / worldSize; rank 0 alone evaluates on the test split and writes
 * result.json and the student; the other ranks return null.
 */
export function runDistillation(cfg: DistillRunConfig, out: string, opts: { resume?: boolean } & LoopHooks = {}): DistillResult | null {
  checkRunInputs(cfg);
  const dp = dataParallel();
  const split = rankBatch(cfg.loop.batchSize, out, opts.resume);
  const { model: teacher, card } = loadClassifier(cfg.teacher);
  manualSeed(cfg.loop.seed);
  const student = createModel(cfg.student, { numClasses: card.numClasses } as never);
  checkStudentFits(teacher, student, cfg.student, cfg.teacher);
  const how = resolveStudentInit(cfg.studentInit ?? 'auto', cfg.method, teacher, student);
  if (how === 'select') {
    const r = selectWeights(teacher as unknown as Module, student as unknown as Module);
    if (Object.keys(r.selected).length === 0) throw new Error(`--student-init select: no parameter of ${cfg.student} matches the teacher's (${cfg.teacher}); it needs the same model family`);
    opts.log?.(`student init: ${Object.keys(r.selected).length} tensors selected from the teacher, ${Object.keys(r.kept).length} kept random`);
  }
  const val = loadDataset(card.dataset, 'val');
  const ctx: DistillContext = {
    teacher,
    student,
    inputShape: teacher.inputShape,
    numClasses: card.numClasses,
    mean: card.mean,
    std: card.std,
    batchSize: split.batch,
    realTrain: METHODS[cfg.method]!.dataFree ? undefined : loadDataset(card.dataset, 'train'),
  };
  const method = createMethod(cfg.method, ctx, cfg.hparams);
  // Every rank writes it (the same bytes): a rank on another machine resumes from its own copy.
  writeJsonAtomic(join(out, 'config.json'), { ...cfg, student_init: how, method_hparams: method.hparams, dataset: card.dataset, ...split.config });
  const loop = distillLoop(ctx, method, cfg.loop, out, val, opts);
  method.dispose();
  if (dp && !dp.isMain) return null;

  student.eval();
  const test = loadDataset(card.dataset, 'test');
  const testAcc = evaluateClassifier(student, test).accuracy;
  const teacherAcc = evaluateClassifier(teacher, test).accuracy;
  const valAcc = evaluateClassifier(student, val).accuracy;
  const result: DistillResult = {
    method: cfg.method,
    teacher: cfg.teacher,
    student: cfg.student,
    dataset: card.dataset,
    test_acc: testAcc,
    teacher_test_acc: teacherAcc,
    retention: testAcc / teacherAcc,
    val_acc: valAcc,
    seconds: loop.seconds,
    iterations: loop.iterations,
    iterations_per_second: loop.iterations / Math.max(1e-9, loop.seconds),
    stopped_by: loop.stoppedBy,
    student_params: student.numParameters(),
    teacher_params: teacher.numParameters(),
    student_flops: countFlops(student).flops,
    teacher_flops: countFlops(teacher).flops,
    data_free: METHODS[cfg.method]!.dataFree,
    student_init: how,
    collapse: collapseSummary(join(out, 'metrics.jsonl')),
  };
  writeJsonAtomic(join(out, 'result.json'), result);
  const studentCard: ModelCard = {
    preset: cfg.student,
    overrides: { numClasses: card.numClasses },
    dataset: card.dataset,
    numClasses: card.numClasses,
    classNames: card.classNames,
    inputShape: card.inputShape,
    mean: card.mean,
    std: card.std,
    val_acc: valAcc,
    test_acc: testAcc,
    params: result.student_params,
    distilled_from: cfg.teacher,
    method: cfg.method,
    seconds: loop.seconds,
  };
  saveTensors(checkpointPaths(join(out, 'model')).weights, student.stateDict(), { format: 'vit-dfkd', preset: cfg.student });
  writeJsonAtomic(checkpointPaths(join(out, 'model')).config, studentCard);
  return result;
}

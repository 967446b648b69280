// bench detect: the detection table of BENCHMARKS.md — the DETR teacher, the `scratch` student
// (trained on the real training canvases), the `kd` reference (teacher on real canvases) and each
// data-free method (same teacher, student preset, seed and time budget): test mAP@[.5:.95], AP50,
// wall time, params, FLOPs; mAP retention = student mAP / teacher mAP. Also a comparison report with
// each method's validation-mAP-vs-time curve (bench/results/detect.html).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { manualSeed } from '../src/tensor/tensor.js';
import { loadDetectionDataset } from '../src/data/detection.js';
import { createDetector, describeDetector } from '../src/models/detr.js';
import { loadCheckpointInto } from '../src/export/checkpoint.js';
import { DETECT_TRAIN_DEFAULTS, detectTrainRun, loadDetector, type DetectTrainConfig } from '../src/detect/run.js';
import { evaluateDetector } from '../src/detect/evaluate.js';
import { runDetectDistillation } from '../src/detect/distill/run.js';
import { DETECT_METHODS } from '../src/detect/distill/methods.js';
import type { LoopConfig } from '../src/distill/loop.js';
import { writeComparisonReport } from '../src/report/html.js';
import { BENCH_DIR, memoRow, report, runInParallel } from './common.js';

export interface DetectBenchOptions {
  teacher: string;
  student: string;
  methods: string[];
  minutes: number;
  /** Epochs of the `scratch` student on the real training canvases. */
  scratchEpochs: number;
  batch: number;
  seed: number;
  hparams?: Record<string, Record<string, number>>;
  tiny?: boolean;
  /** Runs at once, each a 1-thread child process (see bench distill). */
  jobs?: number;
  /** Child mode: run this one unit (`scratch` or a method) into its run folder, write no table. */
  only?: string;
}

const TINY_SPEC = 'canvas-mnist?n=32&nval=16&ntest=16&size=32&scale=10-16&objects=1-2';

/** --tiny: a teacher trained for one epoch on a 32×32 toy set (a smoke test of the whole bench). */
function tinyTeacher(dir: string): string {
  rmSync(dir, { recursive: true, force: true }); // always fresh: a stale one may be another architecture
  const cfg: DetectTrainConfig = { ...DETECT_TRAIN_DEFAULTS, dataset: TINY_SPEC, model: 'detr-teacher-64', modelOverrides: { imageSize: 32 }, epochs: 1, batchSize: 8 };
  const train = loadDetectionDataset(TINY_SPEC, 'train');
  const val = loadDetectionDataset(TINY_SPEC, 'val');
  manualSeed(0);
  const m = createDetector('detr-teacher-64', { imageSize: 32 });
  detectTrainRun(cfg, dir, m, { train, val });
  return dir;
}

function curve(runDir: string): [number, number][] {
  const f = join(runDir, 'metrics.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { seconds: number; val_map: number }).map((r) => [r.seconds, r.val_map]);
}

export async function benchDetect(o: DetectBenchOptions): Promise<string> {
  const name = `detect${o.tiny ? '-tiny' : ''}`;
  const runsDir = join(BENCH_DIR, 'runs', name);
  let teacherPath = o.teacher;
  if (o.tiny) {
    const dir = join(runsDir, 'teacher');
    // The parent trains the tiny teacher afresh (its runs go with it); --jobs children use the parent's.
    if (!o.only || !existsSync(join(dir, 'model.json'))) {
      if (!o.only) rmSync(runsDir, { recursive: true, force: true });
      tinyTeacher(dir);
      const { publishDetector, detectorCard } = await import('../src/detect/run.js');
      const m = createDetector('detr-teacher-64', { imageSize: 32, numClasses: 10, inChannels: 1 });
      loadCheckpointInto(join(dir, 'checkpoints', 'best'), m);
      const data = loadDetectionDataset(TINY_SPEC, 'val');
      publishDetector(dir, m, detectorCard({ model: 'detr-teacher-64', modelOverrides: { imageSize: 32 }, dataset: TINY_SPEC }, m, data, { val_map: 0, seconds: 0 }));
    }
    teacherPath = dir;
  }
  if (!existsSync(teacherPath)) {
    throw new Error(`bench detect: no teacher at ${teacherPath}; train one with dfkd train --dataset canvas-mnist --model detr-teacher-64 --out ${teacherPath} (README), or pass --teacher`);
  }
  const units = ['scratch', ...o.methods];
  if (o.only && !units.includes(o.only)) throw new Error(`bench detect: --only ${o.only} is not one of ${units.join(', ')}`);
  if (!o.only && (o.jobs ?? 1) > 1) await runInParallel(units, o.jobs!, process.argv.slice(1));

  const { model: teacher, card } = loadDetector(teacherPath);
  const test = loadDetectionDataset(card.dataset, 'test');
  const teacherFlops = describeDetector(card.preset, card.overrides).flops;
  const overrides = { numClasses: card.numClasses, inChannels: teacher.config.inChannels, imageSize: teacher.config.imageSize };

  // scratch: the student trained on the real training canvases and their labels.
  const scratch = (): Record<string, unknown> => {
    const out = join(runsDir, 'scratch');
    const cfg: DetectTrainConfig = { ...DETECT_TRAIN_DEFAULTS, dataset: card.dataset, model: o.student, modelOverrides: overrides, epochs: o.tiny ? 1 : o.scratchEpochs, batchSize: o.tiny ? 8 : o.batch, seed: o.seed };
    return memoRow(out, { unit: 'scratch', teacher: teacherPath, cfg }, () => {
      manualSeed(o.seed);
      const student = createDetector(o.student, overrides);
      process.stderr.write(`\n== scratch: ${o.student} on ${card.dataset}, ${cfg.epochs} epochs\n`);
      const r = detectTrainRun(cfg, out, student, { train: loadDetectionDataset(card.dataset, 'train'), val: loadDetectionDataset(card.dataset, 'val') }, {
        onEpoch: (m) => process.stderr.write(`  epoch ${m.epoch} ${m.seconds.toFixed(0)} s: val mAP ${m.val_map.toFixed(4)}\n`),
      });
      loadCheckpointInto(join(out, 'checkpoints', 'best'), student);
      const s = evaluateDetector(student, test);
      return { model: 'scratch', preset: o.student, data_free: false, map: s.map, ap50: s.ap50, seconds: r.seconds, params: student.numParameters(), flops: describeDetector(o.student, overrides).flops };
    }, 'scratch');
  };

  const distilled = (method: string): Record<string, unknown> => {
    const out = join(runsDir, method);
    const loop: LoopConfig = {
      iterations: o.tiny ? 2 : Number.MAX_SAFE_INTEGER, minutes: o.tiny ? 5 : o.minutes, batchSize: o.tiny ? 4 : o.batch, seed: o.seed,
      evalEvery: o.tiny ? 1 : 50, sampleEvery: o.tiny ? 2 : 200, checkpointEvery: o.tiny ? 2 : 100, cosine: true, clipNorm: 1,
    };
    const hparams = { ...(o.tiny && method === 'deepinv' ? { stepsPerBatch: 2, inversionSteps: 1 } : {}), ...(o.hparams?.[method] ?? {}) };
    const want = { unit: method, teacher: teacherPath, student: o.student, loop, hparams: { ...(DETECT_METHODS[method]?.defaults ?? {}), ...hparams } };
    return memoRow(out, want, () => {
      process.stderr.write(`\n== ${method} ${JSON.stringify(hparams)} (${o.tiny ? 'tiny' : `${o.minutes} min`})\n`);
      const r = runDetectDistillation({ task: 'detect', teacher: teacherPath, student: o.student, method, hparams, loop }, out, {
        onEval: (row) => process.stderr.write(`  it ${row.iteration} ${(row.seconds ?? 0).toFixed(0)} s: val mAP ${(row.val_map ?? 0).toFixed(4)}\n`),
      })!; // one process: never null
      return { model: method, preset: o.student, data_free: r.data_free, map: r.test_map, ap50: r.test_ap50, map_retention: r.map_retention, seconds: r.seconds, iterations: r.iterations, params: r.student_params, flops: r.student_flops };
    }, method);
  };

  if (o.only) {
    if (o.only === 'scratch') scratch();
    else distilled(o.only);
    return join(runsDir, o.only);
  }

  const t = evaluateDetector(teacher, test);
  const rows: Record<string, unknown>[] = [
    { model: 'teacher', preset: card.preset, data_free: false, map: t.map, ap50: t.ap50, map_retention: 1, seconds: card.seconds ?? null, params: teacher.numParameters(), flops: teacherFlops },
  ];
  process.stderr.write(`teacher ${teacherPath}: test mAP ${t.map.toFixed(4)}, AP50 ${t.ap50.toFixed(4)}\n`);
  const curves: { name: string; points: [number, number][] }[] = [];
  const sc = scratch();
  rows.push({ ...sc, map_retention: t.map > 0 ? (sc.map as number) / t.map : 0 });
  curves.push({ name: 'scratch', points: curve(join(runsDir, 'scratch')) });
  for (const method of o.methods) {
    rows.push(distilled(method));
    curves.push({ name: method, points: curve(join(runsDir, method)) });
  }
  const dataFree = rows.filter((r) => r.data_free === true);
  const best = dataFree.reduce<Record<string, unknown> | null>((a, r) => (a === null || (r.map_retention as number) > (a.map_retention as number) ? r : a), null);
  const file = report({
    name,
    config: { teacher: teacherPath, dataset: card.dataset, student: o.student, minutes_per_method: o.tiny ? 0 : o.minutes, scratch_epochs: o.scratchEpochs, batch: o.batch, seed: o.seed, hparams: o.hparams ?? {} },
    results: rows,
    summary: { teacher_map: t.map, teacher_ap50: t.ap50, best_method: best?.model ?? null, best_map_retention: best?.map_retention ?? null },
  });
  writeComparisonReport(join(BENCH_DIR, 'results', `${name}.html`), rows, curves, {
    title: `Data-free detection distillation on ${card.dataset}`,
    subtitle: `teacher ${teacherPath} → student ${o.student}, ${o.minutes} min per method, seed ${o.seed}`,
    xLabel: 'seconds',
    yLabel: 'student validation mAP@[.5:.95]',
  });
  return file;
}

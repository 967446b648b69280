// The main job: the shipped MNIST ViT teacher → data-free distillation into the small ViT student
// with the seed method (`tgan`) for about five minutes at 1 intra-op thread (the fastest here: bench/results/ddp.json) → test accuracy and retention →
// (`tgan` is the measured winner at this budget and pair: 73.4 ± 4.3% test over three seeds against
// nayer 67.5, fast 64.7 and cmi 29.3 — bench/results/distill-mnist-vit-5min.json)
// an HTML report with the synthetic samples → the student exported for the browser demo, in float
// (<out>/model.onnx) and in int8 (<out>/model.int8.onnx: dfkd export --quantize int8, calibrated on
// synthetic images of this run's own generator — data-free), so that `dfkd serve --model <out>`
// shows both, switchable, with their latencies.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDistillCommand } from './distill.js';
import type { ExportCliOptions } from './export.js';

/** The teacher shipped in the repository (trained by `dfkd train`; see the README's teacher table). */
export const SHIPPED_MNIST_TEACHER = fileURLToPath(new URL('../../../teachers/mnist-vit', import.meta.url));

export interface DemoOptions {
  minutes: number;
  seed: number;
  out: string;
  method: string;
  student: string;
  /** Export the student to <out>/model.onnx and <out>/model.int8.onnx afterwards (default true). */
  onnx?: boolean;
}

/**
 * The student of a finished distillation run as the browser demo serves it: <run>/model.onnx (float)
 * and <run>/model.int8.onnx, both through dfkd export's own code (checked against libtorch on real
 * test images before writing; the int8 one calibrated on synthetic images of the run's generator or
 * image bank, then its float and int8 test accuracy recorded in its metadata). Batch 1, as the page
 * runs them. Returns the two paths.
 */
export async function exportDemoModels(run: string): Promise<{ float: string; int8: string }> {
  const { runExportCommand } = await import('./export.js');
  const base: ExportCliOptions = {
    model: run, onnx: join(run, 'model.onnx'), opset: 17, dynamicBatch: false, batch: 1, foldNormalization: true, attention: true,
    verify: 100, tolerance: 1e-4, eval: false, json: false,
  };
  await runExportCommand(base);
  const int8 = join(run, 'model.int8.onnx');
  await runExportCommand({ ...base, onnx: int8, quantize: 'int8', calibrationImages: 256, calibrationSeed: 0, quantizeAttention: false, reduceRange: true });
  return { float: base.onnx, int8 };
}

export async function runDemo(o: DemoOptions): Promise<void> {
  if (!existsSync(SHIPPED_MNIST_TEACHER)) throw new Error(`the shipped teacher is missing: ${SHIPPED_MNIST_TEACHER}`);
  runDistillCommand({
    teacher: SHIPPED_MNIST_TEACHER,
    student: o.student,
    method: o.method,
    minutes: o.minutes,
    batch: 64,
    seed: o.seed,
    evalEvery: 25,
    sampleEvery: 50,
    checkpointEvery: 50,
    cosine: true,
    clipNorm: 5,
    out: o.out,
    resume: false,
    // A re-run of the demo keeps the previous one: moved aside to <out>.old-<time>, never overwritten.
    force: true,
    report: true,
  });
  if (o.onnx === false) return;
  await exportDemoModels(o.out);
  process.stdout.write(`browser demo, float and int8 side by side: dfkd serve --model ${o.out}\n`);
}

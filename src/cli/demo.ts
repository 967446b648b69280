// The main job: the shipped MNIST ViT teacher → data-free distillation into the small ViT student
// with the seed method (`tgan`) for about five minutes at 1 intra-op thread (the fastest here: bench/results/ddp.json) → test accuracy and retention →
// an HTML report with the synthetic samples.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runDistillCommand } from './distill.js';

/** The teacher shipped in the repository (trained by `dfkd train`; see the README's teacher table). */
export const SHIPPED_MNIST_TEACHER = fileURLToPath(new URL('../../../teachers/mnist-vit', import.meta.url));

export interface DemoOptions {
  minutes: number;
  seed: number;
  out: string;
  method: string;
  student: string;
}

export function runDemo(o: DemoOptions): void {
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
}

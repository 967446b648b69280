// Fixtures shared by the tests of the classification distillation methods (cmi, fast, nayer, the
// driver): tiny random-weight teachers of the three families the methods must handle — a ViT, a
// LeNet-5 (no BatchNorm) and a CIFAR-ResNet (BatchNorm) — with their students, fake validation sets,
// the loop configuration, and the state-dict comparisons behind the exact-resume tests.
//
// Cost: ViT width 24, depth 1, patch 7; LeNet-5; ResNet widths 8–16 at 16×16: a few ms a forward pass.
import * as T from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { createModel } from '../models/registry.js';
import type { Classifier } from '../models/types.js';
import type { ImageDataset } from '../data/types.js';
import { freeze, type LoopConfig } from '../distill/loop.js';
import type { DistillContext } from '../distill/types.js';

export const MNIST_NORM = { mean: [0.1307], std: [0.3081] };
export const CIFAR_NORM = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };

/** n uniform-noise images with random labels of 10 classes: a validation set for loops that only need one. */
export function fakeDataset(name: string, shape: [number, number, number], norm: { mean: number[]; std: number[] }, n = 16): ImageDataset {
  return {
    name,
    split: 'val',
    images: T.keep(T.rand([n, ...shape])),
    labels: T.keep(T.randint(0, 10, [n])),
    numClasses: 10,
    classNames: Array.from({ length: 10 }, (_, i) => String(i)),
    ...norm,
  };
}

export type Family = 'vit' | 'lenet' | 'resnet';

export interface TinyTeachers {
  vit: Classifier;
  lenet: Classifier;
  resnet: Classifier;
  mnistVal: ImageDataset;
  cifarVal: ImageDataset;
}

/**
 * The three frozen teachers (libtorch seed 0) and fake validation sets. The ResNet's BatchNorms get
 * the running statistics of an input distribution (40 train-mode passes at momentum 0.1 forget the
 * (0, 1) init), so that a BN-statistics prior has a reachable minimum.
 */
export function tinyTeachers(): TinyTeachers {
  T.manualSeed(0);
  const vit = createModel('vit-student-28', { dim: 24, depth: 1, heads: 2, patchSize: 7, mlpRatio: 2 });
  const lenet = createModel('lenet5-28');
  const resnet = createModel('resnet18-cifar', { widths: [8, 8, 16, 16], blocks: [1, 1, 1, 1], imageSize: 16 });
  T.noGrad(() => {
    resnet.train();
    for (let i = 0; i < 40; i++) T.tidy(() => resnet.forward(T.randn([16, 3, 16, 16]).mul(0.5).add(0.3)));
  });
  for (const t of [vit, lenet, resnet]) freeze(t);
  return { vit, lenet, resnet, mnistVal: fakeDataset('mnist', [1, 28, 28], MNIST_NORM), cifarVal: fakeDataset('cifar10', [3, 16, 16], CIFAR_NORM) };
}

/** A fresh student of the family (seeded) and the data-free context around its teacher. */
export function familyContext(t: TinyTeachers, family: Family, studentSeed: number, batchSize = 8): DistillContext {
  T.manualSeed(studentSeed);
  if (family === 'resnet') {
    const student = createModel('resnet18-cifar', { widths: [4, 4, 8, 8], blocks: [1, 1, 1, 1], imageSize: 16 });
    return { teacher: t.resnet, student, inputShape: [3, 16, 16], numClasses: 10, ...CIFAR_NORM, batchSize };
  }
  const student = family === 'vit' ? createModel('vit-student-28', { dim: 16, depth: 1, heads: 2, patchSize: 7 }) : createModel('lenet5-half-28');
  return { teacher: family === 'vit' ? t.vit : t.lenet, student, inputShape: [1, 28, 28], numClasses: 10, ...MNIST_NORM, batchSize };
}

/** The family's fake validation set: CIFAR-shaped for the ResNet, MNIST-shaped for the ViT and LeNet-5. */
export function familyVal(t: TinyTeachers, family: Family): ImageDataset {
  return family === 'resnet' ? t.cifarVal : t.mnistVal;
}

/** A loop of `iterations` at batch 8, seed 7, no cosine schedule (a resume test changes the length), no evaluation. */
export function testLoopConfig(iterations: number, over: Partial<LoopConfig> = {}): LoopConfig {
  return { iterations, minutes: Number.POSITIVE_INFINITY, batchSize: 8, seed: 7, evalEvery: 1000, sampleEvery: 1000, checkpointEvery: 1000, cosine: false, clipNorm: 5, ...over };
}

/** Copies of a module's tensors. */
export function snapshot(m: { stateDict(): Record<string, Tensor> }): Record<string, Tensor> {
  return T.noGrad(() => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, t.clone()])));
}

/** Largest |a − b| over every tensor of two state dicts, which must have the same keys. */
export function maxStateDiff(a: Record<string, Tensor>, b: Record<string, Tensor>): number {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.join('\n') !== kb.join('\n')) throw new Error(`state dicts with different keys: only in the first: ${ka.filter((k) => !(k in b)).join(', ') || '-'}; only in the second: ${kb.filter((k) => !(k in a)).join(', ') || '-'}`);
  let m = 0;
  for (const k of ka) m = Math.max(m, T.tidy(() => a[k]!.double().sub(b[k]!.double()).abs().max().item()));
  return m;
}

/** Whether two state dicts have the same keys and hold the same bytes, tensor for tensor. */
export function bitIdentical(a: Record<string, Tensor>, b: Record<string, Tensor>): boolean {
  const bytes = (t: Tensor): Buffer => {
    const d = t.contiguous().data();
    return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  };
  return Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((k) => b[k] !== undefined && bytes(a[k]!).equals(bytes(b[k]!)));
}

// The shape every image dataset takes once loaded.
import type { Tensor } from '../tensor/tensor.js';

export type Split = 'train' | 'val' | 'test';

export interface ImageDataset {
  /** e.g. 'mnist', 'fashion-mnist', 'cifar10' */
  name: string;
  split: Split;
  /** [N, C, H, W] float32 in [0, 1]. */
  images: Tensor;
  /** [N] int64 class indices. */
  labels: Tensor;
  numClasses: number;
  classNames: string[];
  /** Per-channel normalisation the models expect: (x − mean) / std. */
  mean: number[];
  std: number[];
}

// What every image classifier of the project offers, whatever its family (ViT/DeiT, LeNet-5,
// CIFAR ResNet): the distillation code and the training loop only need this.
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';

/** Forward options. Only the ViT reads them (attention maps, block tokens); the CNNs ignore them. */
export interface ClassifierForwardOptions {
  returnAttention?: boolean;
  returnTokens?: boolean;
}

export interface ClassifierOutput {
  /** Class logits [B, classes]. */
  logits: Tensor;
  /**
   * The penultimate activations [B, F] that the head reads: the final-normed class token of a ViT,
   * the flattened conv3 output of LeNet-5 (120-d, as DAFL's `out_feature`), the pooled 512-d
   * vector of a CIFAR ResNet. DAFL's activation loss uses it.
   */
  feature: Tensor;
}

export type ModelFamily = 'vit' | 'lenet5' | 'lenet5-half' | 'resnet18' | 'resnet34';

/** A Module mapping images [B, C, H, W] to logits and features. */
export interface Classifier extends Module {
  forward(x: Tensor, opts?: ClassifierForwardOptions): ClassifierOutput;
  /** The input one image must have: [channels, height, width]. */
  readonly inputShape: [number, number, number];
  readonly numClasses: number;
  /** The constructor configuration (JSON-serialisable; checkpoints store it beside the weights). */
  readonly config: object;
}

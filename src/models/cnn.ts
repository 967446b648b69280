// The CNN teachers and students of the data-free distillation literature, with PyTorch parameter
// names so that state dicts map key for key onto the published PyTorch code:
//
// - LeNet-5 and LeNet-5-Half of DAFL (Chen et al. 2019, "Data-Free Learning of Student Networks",
//   lenet.py): conv1 → relu → maxpool → conv2 → relu → maxpool → conv3 → relu → fc1 → relu → fc2.
// - The CIFAR ResNets of DAFL / Fast-Datafree (Fang et al. 2022; resnet_cifar.py, after kuangliu's
//   pytorch-cifar): 3×3 stem without max-pool, BasicBlocks with a 1×1 conv + BN shortcut
//   (`shortcut.0`, `shortcut.1`) where the shape changes, global average pool, `linear` head.
//
// forward(x) returns { logits, feature }: `feature` is what the head reads (DAFL's `out_feature`),
// the activations its information-entropy / activation losses use.
import { adaptiveAvgPool2d, maxPool2d } from '../tensor/functional.js';
import type { Tensor } from '../tensor/tensor.js';
import { BatchNorm2d, Conv2d, Linear } from '../nn/layers.js';
import { Module, Sequential } from '../nn/module.js';
import type { Classifier, ClassifierForwardOptions, ClassifierOutput } from './types.js';

/** Disposes the intermediate `t` (never the caller's input `keep`) and returns `next`. */
function step(t: Tensor, keepT: Tensor, next: Tensor): Tensor {
  if (t !== keepT && t !== next) t.dispose();
  return next;
}

function checkInput(name: string, x: Tensor, [c, h, w]: [number, number, number]): void {
  const s = x.shape;
  if (s.length !== 4 || s[1] !== c || s[2] !== h || s[3] !== w) {
    throw new Error(`${name}: expected input [B, ${c}, ${h}, ${w}], got [${s.join(', ')}]`);
  }
}

// ---------------------------------------------------------------------------------------------
// LeNet-5

export interface LeNetConfig {
  inChannels: number;
  /**
   * Input height = width. DAFL resizes MNIST to 32×32 and uses unpadded 5×5 convolutions
   * (32 → 28 → 14 → 10 → 5 → 1). We instead pad the first convolution by (32 − imageSize)/2, so
   * 28×28 MNIST works unchanged with padding 2: every later layer then sees exactly the maps of the
   * 32×32 network (28×28 after conv1, 1×1 after conv3), the same receptive-field geometry and the
   * same parameters. imageSize 32 gives DAFL's network exactly.
   */
  imageSize: number;
  numClasses: number;
  /** Output channels of conv1, conv2, conv3: DAFL's LeNet-5 [6, 16, 120], LeNet-5-Half [3, 8, 60]. */
  channels: [number, number, number];
  /** Width of fc1: 84 (LeNet-5), 42 (Half). */
  hidden: number;
}

export const LENET5_DEFAULTS: LeNetConfig = { inChannels: 1, imageSize: 32, numClasses: 10, channels: [6, 16, 120], hidden: 84 };
export const LENET5_HALF_DEFAULTS: LeNetConfig = { inChannels: 1, imageSize: 32, numClasses: 10, channels: [3, 8, 60], hidden: 42 };

export class LeNet5 extends Module implements Classifier {
  readonly config: LeNetConfig;
  conv1: Conv2d;
  conv2: Conv2d;
  conv3: Conv2d;
  fc1: Linear;
  fc2: Linear;

  constructor(config: Partial<LeNetConfig> = {}, defaults: LeNetConfig = LENET5_DEFAULTS) {
    super();
    const c: LeNetConfig = { ...defaults, ...config };
    const pad = (32 - c.imageSize) / 2;
    if (!Number.isInteger(pad) || pad < 0) {
      throw new Error(`LeNet5: imageSize must be 32, 28 or another even size below 32 (the first conv is padded by (32 − size)/2), got ${c.imageSize}`);
    }
    this.config = c;
    const [c1, c2, c3] = c.channels;
    this.conv1 = new Conv2d(c.inChannels, c1, 5, { padding: pad });
    this.conv2 = new Conv2d(c1, c2, 5);
    this.conv3 = new Conv2d(c2, c3, 5);
    this.fc1 = new Linear(c3, c.hidden);
    this.fc2 = new Linear(c.hidden, c.numClasses);
  }

  get inputShape(): [number, number, number] {
    return [this.config.inChannels, this.config.imageSize, this.config.imageSize];
  }
  get numClasses(): number {
    return this.config.numClasses;
  }
  /** Padding of conv1: 2 for 28×28 input, 0 for DAFL's 32×32. */
  get inputPadding(): number {
    return (32 - this.config.imageSize) / 2;
  }

  forward(x: Tensor, _opts?: ClassifierForwardOptions): ClassifierOutput {
    checkInput(this.constructor.name, x, this.inputShape);
    let h = x;
    h = step(h, x, this.conv1.forward(h));
    h = step(h, x, h.relu());
    h = step(h, x, maxPool2d(h, 2, 2));
    h = step(h, x, this.conv2.forward(h));
    h = step(h, x, h.relu());
    h = step(h, x, maxPool2d(h, 2, 2));
    h = step(h, x, this.conv3.forward(h));
    h = step(h, x, h.relu());
    const feature = step(h, x, h.flatten(1)); // [B, 120]: DAFL's view(-1, 120)
    const hidden = this.fc1.forward(feature);
    const act = step(hidden, x, hidden.relu());
    const logits = this.fc2.forward(act);
    act.dispose();
    return { logits, feature };
  }
}

/** DAFL's LeNet-5-Half: every width halved (conv 3, 8, 60; fc 42). The usual MNIST student. */
export class LeNet5Half extends LeNet5 {
  constructor(config: Partial<LeNetConfig> = {}) {
    super(config, LENET5_HALF_DEFAULTS);
  }
}

// ---------------------------------------------------------------------------------------------
// CIFAR ResNet

export interface ResNetConfig {
  inChannels: number;
  /** Input height = width (32 for CIFAR); the global average pool accepts any multiple of 8. */
  imageSize: number;
  numClasses: number;
  /** BasicBlocks per stage: [2, 2, 2, 2] ResNet-18, [3, 4, 6, 3] ResNet-34. */
  blocks: [number, number, number, number];
  /** Stage widths (64, 128, 256, 512 in the papers). */
  widths: [number, number, number, number];
}

export const RESNET18_CIFAR: ResNetConfig = { inChannels: 3, imageSize: 32, numClasses: 10, blocks: [2, 2, 2, 2], widths: [64, 128, 256, 512] };
export const RESNET34_CIFAR: ResNetConfig = { inChannels: 3, imageSize: 32, numClasses: 10, blocks: [3, 4, 6, 3], widths: [64, 128, 256, 512] };

/** relu(bn1(conv1(x))) → bn2(conv2(·)) + shortcut(x) → relu. Convs 3×3 without bias. */
export class BasicBlock extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  /** 1×1 conv (stride s) + BN where the shape changes (`shortcut.0`, `shortcut.1`); identity otherwise. */
  shortcut: Sequential | null;

  constructor(readonly inPlanes: number, readonly planes: number, readonly stride: number) {
    super();
    this.conv1 = new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = new Conv2d(planes, planes, 3, { stride: 1, padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes);
    this.shortcut = stride !== 1 || inPlanes !== planes
      ? new Sequential(new Conv2d(inPlanes, planes, 1, { stride, bias: false }), new BatchNorm2d(planes))
      : null;
  }

  forward(x: Tensor): Tensor {
    let h = x;
    h = step(h, x, this.conv1.forward(h));
    h = step(h, x, this.bn1.forward(h));
    h = step(h, x, h.relu());
    h = step(h, x, this.conv2.forward(h));
    h = step(h, x, this.bn2.forward(h));
    const sc = this.shortcut ? this.shortcut.forward(x) : x;
    const sum = h.add(sc);
    h.dispose();
    if (sc !== x) sc.dispose();
    const out = sum.relu();
    sum.dispose();
    return out;
  }
}

export class ResNet extends Module implements Classifier {
  readonly config: ResNetConfig;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  layer1: BasicBlock[];
  layer2: BasicBlock[];
  layer3: BasicBlock[];
  layer4: BasicBlock[];
  linear: Linear;

  constructor(config: Partial<ResNetConfig> = {}, defaults: ResNetConfig = RESNET18_CIFAR) {
    super();
    const c: ResNetConfig = { ...defaults, ...config };
    if (c.imageSize % 8 !== 0 || c.imageSize <= 0) throw new Error(`ResNet: imageSize must be a positive multiple of 8 (three stride-2 stages), got ${c.imageSize}`);
    if (c.blocks.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`ResNet: every stage needs at least one block, got [${c.blocks.join(', ')}]`);
    this.config = c;
    const [w1, w2, w3, w4] = c.widths;
    this.conv1 = new Conv2d(c.inChannels, w1, 3, { stride: 1, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(w1);
    let inPlanes = w1;
    const stage = (planes: number, n: number, stride: number): BasicBlock[] =>
      Array.from({ length: n }, (_, i) => {
        const b = new BasicBlock(inPlanes, planes, i === 0 ? stride : 1);
        inPlanes = planes;
        return b;
      });
    this.layer1 = stage(w1, c.blocks[0], 1);
    this.layer2 = stage(w2, c.blocks[1], 2);
    this.layer3 = stage(w3, c.blocks[2], 2);
    this.layer4 = stage(w4, c.blocks[3], 2);
    this.linear = new Linear(w4, c.numClasses);
  }

  get inputShape(): [number, number, number] {
    return [this.config.inChannels, this.config.imageSize, this.config.imageSize];
  }
  get numClasses(): number {
    return this.config.numClasses;
  }
  /** All blocks in order. */
  get stages(): BasicBlock[][] {
    return [this.layer1, this.layer2, this.layer3, this.layer4];
  }

  forward(x: Tensor, _opts?: ClassifierForwardOptions): ClassifierOutput {
    checkInput('ResNet', x, this.inputShape);
    let h = x;
    h = step(h, x, this.conv1.forward(h));
    h = step(h, x, this.bn1.forward(h));
    h = step(h, x, h.relu());
    for (const stage of this.stages) for (const block of stage) h = step(h, x, block.forward(h));
    h = step(h, x, adaptiveAvgPool2d(h, 1));
    const feature = step(h, x, h.flatten(1)); // [B, 512]
    const logits = this.linear.forward(feature);
    return { logits, feature };
  }
}

/** CIFAR ResNet-18: BasicBlocks [2, 2, 2, 2], 11,173,962 parameters with 10 classes. */
export function resnet18Cifar(config: Partial<ResNetConfig> = {}): ResNet {
  return new ResNet(config, RESNET18_CIFAR);
}

/** CIFAR ResNet-34: BasicBlocks [3, 4, 6, 3], 21,282,122 parameters with 10 classes. */
export function resnet34Cifar(config: Partial<ResNetConfig> = {}): ResNet {
  return new ResNet(config, RESNET34_CIFAR);
}

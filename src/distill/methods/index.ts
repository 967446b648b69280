// The method registry: one name per method, each with its paper's defaults (every one a CLI flag).
import type { DistillContext, DistillMethod } from '../types.js';
import { Tgan, TGAN_DEFAULTS } from './tgan.js';
import { Dafl, DAFL_DEFAULTS } from './dafl.js';
import { Dfad, DFAD_DEFAULTS } from './dfad.js';
import { Zskt, ZSKT_DEFAULTS } from './zskt.js';
import { DeepInversion, DEEPINV_DEFAULTS } from './deepinv.js';
import { Cmi, CMI_DEFAULTS } from './cmi.js';
import { Nayer, NAYER_DEFAULTS } from './nayer.js';
import { Fast, FAST_DEFAULTS } from './fast.js';
import { KdReal, NoiseKd, REFERENCE_DEFAULTS, Scratch } from './references.js';

type Hparams = Record<string, number | boolean>;

export const METHODS: Record<string, { defaults: Hparams; dataFree: boolean; description: string; create: (ctx: DistillContext, h: Hparams) => DistillMethod }> = {
  tgan: { defaults: TGAN_DEFAULTS, dataFree: true, description: 'transformer-augmented GAN with attention probes (the seed method)', create: (c, h) => new Tgan(c, h) },
  dafl: { defaults: DAFL_DEFAULTS, dataFree: true, description: 'DAFL: one-hot, activation and information-entropy generator losses', create: (c, h) => new Dafl(c, h) },
  dfad: { defaults: DFAD_DEFAULTS, dataFree: true, description: 'DFAD: adversarial min-max on the mean absolute logit discrepancy', create: (c, h) => new Dfad(c, h) },
  zskt: { defaults: ZSKT_DEFAULTS, dataFree: true, description: 'ZSKT: adversarial KL with attention transfer', create: (c, h) => new Zskt(c, h) },
  deepinv: { defaults: DEEPINV_DEFAULTS, dataFree: true, description: 'DeepInversion with the PSAQ-ViT patch-similarity prior and an image bank', create: (c, h) => new DeepInversion(c, h) },
  cmi: { defaults: CMI_DEFAULTS, dataFree: true, description: 'CMI: contrastive model inversion (a feature memory bank pushes new samples away from earlier ones)', create: (c, h) => new Cmi(c, h) },
  nayer: { defaults: NAYER_DEFAULTS, dataFree: true, description: 'NAYER: constant class embeddings through a noisy layer re-initialised every batch', create: (c, h) => new Nayer(c, h) },
  fast: { defaults: FAST_DEFAULTS, dataFree: true, description: 'Fast-DFKD: a meta-learned (Reptile) generator initialisation so a few synthesis steps per batch suffice', create: (c, h) => new Fast(c, h) },
  kd: { defaults: REFERENCE_DEFAULTS, dataFree: false, description: 'reference: KD on the real training images (upper bound)', create: (c, h) => new KdReal(c, h) },
  noise: { defaults: REFERENCE_DEFAULTS, dataFree: true, description: 'reference: KD on Gaussian noise (lower bound)', create: (c, h) => new NoiseKd(c, h) },
  scratch: { defaults: REFERENCE_DEFAULTS, dataFree: false, description: 'reference: the student trained on real labels alone', create: (c, h) => new Scratch(c, h) },
};

export function createMethod(name: string, ctx: DistillContext, overrides: Hparams = {}): DistillMethod {
  const m = METHODS[name];
  if (!m) throw new Error(`unknown method '${name}'; available: ${Object.keys(METHODS).join(', ')}`);
  const unknown = Object.keys(overrides).filter((k) => !(k in m.defaults));
  if (unknown.length) throw new Error(`method ${name} has no hyper-parameter ${unknown.join(', ')}; it has: ${Object.keys(m.defaults).join(', ')}`);
  return m.create(ctx, overrides);
}

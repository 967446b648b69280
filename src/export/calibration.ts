// The int8 calibration set, data-free: synthetic images from a distillation run's own method state
// (its generator, or its image bank / pool), never the real data — as PSAQ-ViT calibrates ViT
// quantisers on synthetic images. The run's method is rebuilt from its config.json the way a resume
// rebuilds it (the same teacher, student preset, method and hyper-parameters; runDistillation and
// the driver), its checkpoints/last state is loaded, and the method's own verbs produce the images:
// `previewBatch` first (a generator's fixed preview latents, or images of its bank), then
// `synthesize` for more until `count` (one synthesis step each, on this in-memory copy only: the run
// folder is never written).
//
// Real data is unreachable from here: the method's context has no `realTrain` (reading it throws),
// methods that are not data-free or keep no generator / bank state (kd, scratch, noise) are refused
// with the --calibrate-from hint, and no dataset loader is imported (test/quantize.test.ts checks,
// in a fresh process, that no dataset file is opened).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cat, manualSeed, noGrad, tidy, dispose, type Tensor } from '../tensor/tensor.js';
import { denormalize } from '../data/augment.js';
import { loadClassifier } from '../models/load.js';
import { createModel } from '../models/registry.js';
import { createMethod, METHODS } from '../distill/methods/index.js';
import { freeze } from '../distill/loop.js';
import type { DistillContext } from '../distill/types.js';
import type { Module } from '../nn/module.js';
import { checkpointPaths, loadCheckpointInto, readCheckpointConfig, unprefixed } from './checkpoint.js';

/** Default calibration set size: ORT's quantize_static examples and PSAQ-ViT use a few hundred images at most. */
export const DEFAULT_CALIBRATION_IMAGES = 256;
/** synthesize() calls allowed to fill the set (a method returning tiny batches must not loop for ever). */
const MAX_SYNTHESIS_CALLS = 64;

/** Where a calibration set came from (recorded in the int8 model's metadata). */
export interface CalibrationSource {
  /** Always 'synthetic': images the run's method produced, not a dataset. */
  kind: 'synthetic';
  run: string;
  method: string;
  teacher: string;
  /** The checkpoint iteration whose method state produced them. */
  iteration: number;
  seed: number;
  images: number;
  /** How many came from previewBatch and how many from synthesize. */
  from_preview: number;
  from_synthesize: number;
}

export interface CalibrationSet {
  /** [N, C, H, W] pixels in [0, 1] (the method's normalised images mapped back, clamped). */
  images: Tensor;
  source: CalibrationSource;
}

interface RunConfig {
  teacher?: string;
  student?: string;
  method?: string;
  hparams?: Record<string, number | boolean>;
  loop?: { seed?: number };
}

const hint = '; calibrate on another run\'s synthetic images with --calibrate-from <run folder made by dfkd distill with a generator or image-bank method>';

/** config.json of a distillation run folder, or a clear error. */
function readRunConfig(run: string): RunConfig & { teacher: string; student: string; method: string } {
  if (!existsSync(run) || !statSync(run).isDirectory()) throw new Error(`calibration: ${run} is not a run folder${hint}`);
  const file = join(run, 'config.json');
  if (!existsSync(file)) throw new Error(`calibration: ${run} has no config.json, so no generator to calibrate from${hint}`);
  let cfg: RunConfig;
  try {
    cfg = JSON.parse(readFileSync(file, 'utf8')) as RunConfig;
  } catch (e) {
    throw new Error(`calibration: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof cfg.method !== 'string' || typeof cfg.teacher !== 'string' || typeof cfg.student !== 'string') {
    throw new Error(`calibration: ${run} was not made by dfkd distill (its config.json has no method / teacher / student), so it has no generator to calibrate from${hint}`);
  }
  return cfg as RunConfig & { teacher: string; student: string; method: string };
}

/**
 * `count` synthetic calibration images from the run folder `run` (a classification distillation run),
 * drawn under `seed`. Throws — before anything is generated — for runs that have no generator or
 * image bank (kd, scratch, noise, training runs) and for a count < 1.
 */
export function syntheticCalibrationSet(run: string, o: { count?: number; seed?: number } = {}): CalibrationSet {
  const count = o.count ?? DEFAULT_CALIBRATION_IMAGES;
  const seed = o.seed ?? 0;
  if (!Number.isInteger(count) || count < 1) throw new Error(`calibration: the calibration set is empty (${count} images requested); give at least 1`);
  const cfg = readRunConfig(run);
  const spec = METHODS[cfg.method];
  if (!spec) throw new Error(`calibration: ${run} used method '${cfg.method}', which this version does not know`);
  if (!spec.dataFree) throw new Error(`calibration: ${run} is a '${cfg.method}' run (trained on real images), which has no generator: int8 calibration uses synthetic images only${hint}`);
  const base = join(run, 'checkpoints', 'last');
  if (!existsSync(checkpointPaths(base).weights)) throw new Error(`calibration: ${run} has no checkpoint (${checkpointPaths(base).weights}) with the method's generator state${hint}`);
  const saved = readCheckpointConfig<{ state?: { iteration?: number }; method?: Record<string, unknown> }>(base);

  const { model: teacher, card } = loadClassifier(cfg.teacher);
  manualSeed(cfg.loop?.seed ?? 0); // as runDistillation: the method's own random init, then its saved state on top
  const student = createModel(cfg.student, { numClasses: card.numClasses } as never);
  let method: ReturnType<typeof createMethod> | undefined;
  const extra = loadCheckpointInto(base, student, ['optim.', 'method.']);
  try {
    const tensors = unprefixed('method.', extra);
    if (Object.keys(tensors).length === 0) {
      throw new Error(`calibration: ${run} (method '${cfg.method}') saved no generator or image-bank state: it has nothing synthetic to calibrate from${hint}`);
    }
    freeze(teacher);
    student.eval();
    const ctx: DistillContext = {
      teacher, student, inputShape: teacher.inputShape, numClasses: card.numClasses, mean: card.mean, std: card.std, batchSize: count,
    };
    Object.defineProperty(ctx, 'realTrain', {
      enumerable: true,
      get: () => {
        throw new Error('calibration: the method asked for real training images; int8 calibration is data-free and never reads them');
      },
    });
    method = createMethod(cfg.method, ctx, cfg.hparams ?? {});
    method.loadStateDict({ tensors, meta: saved.method ?? {} });
    manualSeed(seed);
    const parts: Tensor[] = [];
    let have = 0;
    let fromPreview = 0;
    if (method.previewBatch) {
      // At most what the loop's sample grids ask (8 per class): every method serves that many (tgan's
      // conditional preview draws one label per requested image but has only its fixed preview latents).
      const x = noGrad(() => method!.previewBatch!(ctx, Math.min(count, 8 * ctx.numClasses)));
      parts.push(x);
      have = fromPreview = x.size(0);
    }
    for (let k = 0; have < count; k++) {
      if (k >= MAX_SYNTHESIS_CALLS) throw new Error(`calibration: ${cfg.method} gave ${have} images in ${k} synthesis steps, fewer than the ${count} asked; ask for fewer with --calibration-images`);
      ctx.batchSize = count - have;
      const m = method;
      const x = tidy(() => m.synthesize(ctx, (saved.state?.iteration ?? 0) + k).x.detach().clone());
      parts.push(x);
      have += x.size(0);
    }
    const images = tidy(() => denormalize(cat(parts, 0).narrow(0, 0, count), card.mean, card.std).clamp(0, 1).contiguous());
    dispose(parts);
    return {
      images,
      source: {
        kind: 'synthetic', run, method: cfg.method, teacher: cfg.teacher, iteration: saved.state?.iteration ?? 0, seed,
        images: count, from_preview: Math.min(fromPreview, count), from_synthesize: Math.max(0, count - fromPreview),
      },
    };
  } finally {
    method?.dispose();
    dispose(extra);
    (teacher as unknown as Module).dispose();
    (student as unknown as Module).dispose();
  }
}

/** The run folder a saved model belongs to (its own folder when --model is a run folder or its model.safetensors). */
export function runFolderOf(modelPath: string): string | null {
  if (existsSync(modelPath) && statSync(modelPath).isDirectory()) return existsSync(join(modelPath, 'config.json')) ? modelPath : null;
  const dir = join(modelPath, '..');
  return existsSync(join(dir, 'config.json')) ? dir : null;
}

// Loading a classifier saved by `dfkd train` or `dfkd distill`: a run folder (its model.safetensors
// and model.json) or a checkpoint base path; and teachers from timm / Hugging Face checkpoints
// (loadTeacher, importTeacher).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkpointPaths, loadCheckpointInto, readCheckpointConfig, saveTensors } from '../export/checkpoint.js';
import { headsGuess, hfClassNames, loadTimmViT, NAMED_NORMALIZATIONS, timmConfigFromFile, type CheckpointNaming, type HfViTConfigJson } from '../export/timm.js';
import { datasetInfo, withModelNormalization } from '../data/index.js';
import { writeJsonAtomic } from '../util/fs.js';
import type { Module } from '../nn/module.js';
import { createModel, PRESETS, type ModelOverrides, type ViTPresetConfig } from './registry.js';
import type { Classifier } from './types.js';
import type { VisionTransformer } from './vit.js';

/** What is written beside a trained model's weights. */
export interface ModelCard {
  preset: string;
  overrides: Record<string, unknown>;
  dataset: string;
  numClasses: number;
  classNames: string[];
  inputShape: number[];
  mean: number[];
  std: number[];
  val_acc: number;
  test_acc?: number;
  params: number;
  command?: string;
  seconds?: number;
  epochs?: number;
  [k: string]: unknown;
}

export function modelBasePath(path: string): string {
  return existsSync(path) && statSync(path).isDirectory() ? join(path, 'model') : checkpointPaths(path).weights.replace(/\.safetensors$/, '');
}

/**
 * A classifier saved by dfkd; a timm / Hugging Face checkpoint is imported (loadTeacher's rules,
 * with `options` for what its files cannot say).
 */
export function loadClassifier(path: string, options: TeacherImportOptions = {}): { model: Classifier; card: ModelCard } {
  const f = foreignCheckpoint(path);
  if (f) {
    const { model, card } = importForeign(path, f, options);
    return { model, card };
  }
  const base = modelBasePath(path);
  if (!existsSync(checkpointPaths(base).weights)) {
    throw new Error(`no model at ${path}: expected ${checkpointPaths(base).weights} (a run folder made by dfkd train or dfkd distill, or a checkpoint path)`);
  }
  const card = readCheckpointConfig<ModelCard>(base);
  if (typeof card.preset !== 'string') throw new Error(`${checkpointPaths(base).config} does not describe a model (no "preset")`);
  const model = createModel(card.preset, (card.overrides ?? {}) as Record<string, never>);
  loadCheckpointInto(base, model);
  model.eval();
  return { model, card };
}

// ---------------------------------------------------------------------------------------------
// Teachers from timm / Hugging Face checkpoints
//
// A `.safetensors` file without a model.json card beside it (timm or Hugging Face key names), or a
// Hugging Face model folder (model.safetensors, config.json, optionally preprocessor_config.json,
// and no model.json), is imported: the architecture from the tensor shapes and config.json
// (export/timm.ts), what they cannot say from the options — all missing pieces in one error.

/** What an imported checkpoint cannot say about itself (the CLI's --heads, --mean, --std, --classes, --dataset). */
export interface TeacherImportOptions {
  /** Attention heads (not in the tensor shapes; a Hugging Face config.json has num_attention_heads). */
  heads?: number;
  /** Input normalisation the checkpoint was trained with: one value per channel, one for all, or a name ('imagenet', 'inception'). */
  mean?: readonly number[] | string;
  std?: readonly number[] | string;
  /** Class names by index (else config.json's id2label, else the dataset's). */
  classes?: readonly string[];
  /** The labelled dataset the model is evaluated on (a dataset spec); its class names when `classes` is not given. */
  dataset?: string;
}

/** Where a foreign (timm / Hugging Face) checkpoint's files are. */
export interface ForeignCheckpoint {
  weights: string;
  /** A Hugging Face config.json beside the weights, if any. */
  hfConfig?: string;
  /** A Hugging Face preprocessor_config.json (image_mean, image_std), if any. */
  preprocessor?: string;
}

export interface LoadedTeacher {
  model: Classifier;
  card: ModelCard;
  /** For an imported checkpoint: its naming and how each value was found; null for a dfkd model. */
  imported: { naming: CheckpointNaming; weights: string; notes: string[] } | null;
}

const readJson = <T>(file: string): T => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
};
/** A config.json of Hugging Face's (not a dfkd run's config.json, which has none of these). */
const isHfConfig = (file: string): boolean => {
  if (!existsSync(file)) return false;
  const c = readJson<Record<string, unknown>>(file);
  return typeof c.model_type === 'string' || typeof c.hidden_size === 'number';
};

/**
 * The files of a timm / Hugging Face checkpoint at `path`, or null when `path` is not one (a dfkd
 * run folder or checkpoint, which has its model.json card, or nothing loadable).
 */
export function foreignCheckpoint(path: string): ForeignCheckpoint | null {
  if (!existsSync(path)) return null;
  const dir = statSync(path).isDirectory() ? path : dirname(path);
  let weights: string;
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'model.json')) || !existsSync(join(path, 'model.safetensors'))) return null;
    weights = join(path, 'model.safetensors');
  } else {
    if (!path.endsWith('.safetensors') || existsSync(checkpointPaths(path).config)) return null;
    weights = path;
  }
  const cfg = join(dir, 'config.json');
  const pre = join(dir, 'preprocessor_config.json');
  return { weights, hfConfig: isHfConfig(cfg) ? cfg : undefined, preprocessor: existsSync(pre) ? pre : undefined };
}

/** A --mean / --std value: a name of NAMED_NORMALIZATIONS, one number for every channel, or one per channel. */
function normalizationOf(v: readonly number[] | string, which: 'mean' | 'std', channels: number): number[] {
  let values: readonly number[];
  if (typeof v === 'string') {
    const named = NAMED_NORMALIZATIONS[v.toLowerCase()];
    values = named ? named[which] : v.split(',').map(Number);
    if (!named && values.some((x) => !Number.isFinite(x))) {
      throw new Error(`--${which} ${v}: expected numbers (comma-separated, one per channel or one for all) or a name (${Object.keys(NAMED_NORMALIZATIONS).join(', ')})`);
    }
  } else values = v;
  if (values.length === 1) values = new Array<number>(channels).fill(values[0]!);
  if (values.length !== channels) throw new Error(`--${which} has ${values.length} values but the model takes ${channels} channel(s)`);
  if (which === 'std' && values.some((x) => !(x > 0))) throw new Error(`--std must be positive, got ${values.join(',')}`);
  return [...values];
}

/** A ViT preset with exactly this configuration's size (its name in the card), else the generic 'vit'. */
function presetFor(c: ViTPresetConfig): string {
  const same = (['imageSize', 'inChannels', 'patchSize', 'dim', 'depth', 'heads'] as const);
  const hit = Object.entries(PRESETS).find(([, p]) => p.family === 'vit' && same.every((k) => (p.config as ViTPresetConfig)[k] === c[k]));
  return hit ? hit[0] : 'vit';
}

/**
 * Builds the model of a timm / Hugging Face checkpoint and its card. Every piece of information that
 * is missing (heads, mean / std, class names) is named, with its flag, in one error.
 */
function importForeign(path: string, f: ForeignCheckpoint, o: TeacherImportOptions): LoadedTeacher {
  const hf = f.hfConfig ? readJson<HfViTConfigJson>(f.hfConfig) : undefined;
  const pre = f.preprocessor ? readJson<{ image_mean?: number[]; image_std?: number[] }>(f.preprocessor) : undefined;
  const missing: string[] = [];
  const headsKnown = o.heads !== undefined || hf?.num_attention_heads !== undefined;
  // Without heads the rest is still inferred (a placeholder 1), so every missing piece is reported together.
  const inferred = timmConfigFromFile(f.weights, { heads: headsKnown ? o.heads : 1, hfConfig: hf });
  const c = inferred.config;
  const notes = headsKnown ? [...inferred.notes] : inferred.notes.filter((n) => !n.startsWith('heads '));
  if (f.hfConfig) notes.unshift(`config.json: ${f.hfConfig}`);
  if (!headsKnown) missing.push(`the number of attention heads: --heads <n> (library: { heads })${headsGuess(c.dim)}; a Hugging Face folder's config.json gives it`);
  if (c.numClasses === 0) throw new Error(`${f.weights} has no classification head (a bare ViTModel or a headless timm model): a teacher needs the classifier it was trained with`);

  let mean: number[] | undefined;
  let std: number[] | undefined;
  if (o.mean !== undefined || o.std !== undefined) {
    if (o.mean === undefined || o.std === undefined) missing.push(`--${o.mean === undefined ? 'mean' : 'std'} (given --${o.mean === undefined ? 'std' : 'mean'} alone)`);
    else [mean, std] = [normalizationOf(o.mean, 'mean', c.inChannels), normalizationOf(o.std, 'std', c.inChannels)];
  } else if (pre?.image_mean && pre.image_std) {
    [mean, std] = [normalizationOf(pre.image_mean, 'mean', c.inChannels), normalizationOf(pre.image_std, 'std', c.inChannels)];
    notes.push(`mean ${mean.join(', ')}, std ${std.join(', ')} from ${f.preprocessor}`);
  } else {
    missing.push("the input normalisation the model was trained with: --mean and --std (e.g. 'imagenet' for DeiT, 'inception' (0.5) for the original ViT, or numbers)");
  }

  const data = o.dataset !== undefined ? datasetInfo(o.dataset) : undefined;
  let classNames: string[] | undefined;
  if (o.classes !== undefined) classNames = [...o.classes];
  else if (hf && hfClassNames(hf)) {
    classNames = hfClassNames(hf)!;
    notes.push(`class names from config.json's id2label`);
  } else if (data) {
    classNames = data.classNames;
    notes.push(`class names from ${o.dataset}`);
  } else missing.push(`the class names: --classes <a,b,…|file with one name a line> or --dataset <spec> (the model has ${c.numClasses} classes)`);
  if (missing.length > 0) throw new Error(`cannot import ${f.weights}: not in the file${f.hfConfig ? ' or its config.json' : ''}:\n  ${missing.join('\n  ')}`);
  if (classNames && classNames.length !== c.numClasses) {
    throw new Error(`${f.weights} has ${c.numClasses} classes but ${o.classes !== undefined ? '--classes gives' : hf && hfClassNames(hf) ? "config.json's id2label has" : `${o.dataset} has`} ${classNames.length}`);
  }
  if (data) {
    if (data.channels !== c.inChannels || data.imageSize !== c.imageSize) {
      throw new Error(`--dataset ${o.dataset} gives ${data.imageSize}×${data.imageSize}×${data.channels} images but the model takes ${c.imageSize}×${c.imageSize}×${c.inChannels}${o.dataset!.startsWith('folder:') ? ` (add ?size=${c.imageSize}&channels=${c.inChannels})` : ''}`);
    }
    if (data.numClasses !== c.numClasses) throw new Error(`--dataset ${o.dataset} has ${data.numClasses} classes but the model has ${c.numClasses}`);
  }

  const preset = presetFor(c);
  const model = createModel(preset, c as ModelOverrides) as VisionTransformer;
  const res = loadTimmViT(f.weights, model);
  model.eval();
  notes.push(...res.notes);
  const card: ModelCard = {
    preset,
    overrides: { ...c },
    dataset: o.dataset !== undefined ? withModelNormalization(o.dataset, mean!, std!) : '',
    numClasses: c.numClasses,
    classNames: classNames!,
    inputShape: [...model.inputShape],
    mean: mean!,
    std: std!,
    val_acc: Number.NaN,
    params: model.numParameters(),
    imported_from: { path, weights: f.weights, naming: res.naming, notes },
  };
  return { model, card, imported: { naming: res.naming, weights: f.weights, notes } };
}

/**
 * A teacher from anywhere: a dfkd run folder / checkpoint (its model.json card), a timm or Hugging
 * Face `.safetensors` file, or a Hugging Face model folder. For the last two, `options` give what
 * the files cannot (see TeacherImportOptions); for a dfkd model they must not be given (its card
 * says all), except `dataset`, which callers use to evaluate on another dataset.
 */
export function loadTeacher(path: string, options: TeacherImportOptions = {}): LoadedTeacher {
  const f = foreignCheckpoint(path);
  if (f) return importForeign(path, f, options);
  const given = (['heads', 'mean', 'std', 'classes'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 0) throw new Error(`--${given[0]} is for timm / Hugging Face checkpoints; ${path} is a dfkd model whose model.json says it all`);
  return { ...loadClassifier(path), imported: null };
}

/**
 * Imports a timm / Hugging Face checkpoint into a dfkd teacher folder `out` (model.safetensors with
 * our key names + model.json), which every command and loadClassifier then read as any other.
 */
export function importTeacher(path: string, out: string, options: TeacherImportOptions = {}): LoadedTeacher {
  const f = foreignCheckpoint(path);
  if (!f) {
    throw new Error(existsSync(path) ? `${path} is not a timm / Hugging Face checkpoint (a .safetensors file without a model.json beside it, or a folder with model.safetensors and no model.json)` : `no checkpoint at ${path}`);
  }
  const t = importForeign(path, f, options);
  const base = join(out, 'model');
  saveTensors(checkpointPaths(base).weights, (t.model as unknown as Module).stateDict(), { format: 'vit-dfkd', preset: t.card.preset });
  writeJsonAtomic(checkpointPaths(base).config, t.card);
  return t;
}

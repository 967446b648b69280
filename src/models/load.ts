// Loading a classifier saved by `dfkd train` or `dfkd distill`: a run folder (its model.safetensors
// and model.json) or a checkpoint base path.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointPaths, loadCheckpointInto, readCheckpointConfig } from '../export/checkpoint.js';
import { createModel } from './registry.js';
import type { Classifier } from './types.js';

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

export function loadClassifier(path: string): { model: Classifier; card: ModelCard } {
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

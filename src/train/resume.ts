// Start or resume an epoch-based training run (classifier and detector training share it): a fresh
// run writes config.json and an empty metrics.jsonl; --resume checks that the settings are the ones
// the run was started with, loads the model, the optimiser and any training-only modules from
// checkpoints/last, and drops metric lines of an epoch whose checkpoint was not written.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, type Tensor } from '../tensor/tensor.js';
import type { Optimizer, OptimizerMeta } from '../nn/optim.js';
import type { Module } from '../nn/module.js';
import { loadCheckpointInto, readCheckpointConfig, unprefixed } from '../export/checkpoint.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { dataParallel, resumeCheckpoint } from '../dist/data-parallel.js';

export interface EpochState {
  /** Epochs completed. */
  epoch: number;
  optimizer: OptimizerMeta;
}

export function startOrResume<C extends object, S extends EpochState>(o: {
  out: string;
  /** checkpoints/last (its config holds { train: C, state: S }). */
  last: string;
  cfg: C;
  /** Values of settings added after a run was started (an older checkpoint lacks them). */
  defaults?: Partial<C>;
  model: Module;
  opt: Optimizer;
  /** Training-only modules saved under `<prefix>.` in checkpoints/last. */
  extra?: Record<string, Module>;
  resume?: boolean;
  initial: S;
  /** "after epoch 3 (…)" for the resume log line. */
  describe: (s: S) => string;
  log: (line: string) => void;
}): S {
  let state = o.initial;
  const metricsFile = join(o.out, 'metrics.jsonl');
  // Data-parallel: rank 0 alone writes metrics.jsonl; every rank resumes its own checkpoint, at the
  // epoch all of them have.
  const dp = dataParallel();
  const main = (dp?.rank ?? 0) === 0;
  if (o.resume) {
    const from = resumeCheckpoint(o.out, o.last, 'epoch', o.log);
    const saved = readCheckpointConfig<{ train: C; state: S }>(from);
    const keys = Object.keys(o.cfg) as (keyof C)[];
    const savedValue = (k: keyof C): unknown => saved.train[k] ?? o.defaults?.[k];
    const mismatch = keys.filter((k) => JSON.stringify(o.cfg[k]) !== JSON.stringify(savedValue(k)));
    if (mismatch.length > 0) {
      throw new Error(
        `--resume: the run in ${o.out} was started with different settings (${mismatch.map((k) => `${String(k)}: ${JSON.stringify(saved.train[k])} vs ${JSON.stringify(o.cfg[k])}`).join('; ')})`,
      );
    }
    const modules = Object.entries(o.extra ?? {});
    const extra = loadCheckpointInto(from, o.model, ['optim.', ...modules.map(([p]) => `${p}.`)]);
    const byPrefix = (p: string): Record<string, Tensor> => unprefixed(p, extra);
    for (const [p, m] of modules) m.loadStateDict(byPrefix(`${p}.`));
    o.opt.loadStateDict({ state: byPrefix('optim.'), meta: saved.state.optimizer });
    dispose(extra);
    state = saved.state;
    o.log(`resumed from ${from} ${o.describe(state)}${dp ? `, ${dp.worldSize} ranks` : ''}`);
  } else {
    // Every rank writes it (the same bytes): a rank on another machine resumes from its own copy.
    writeJsonAtomic(join(o.out, 'config.json'), { ...o.cfg, ...(dp ? { world_size: dp.worldSize } : {}) });
    if (main) writeFileAtomic(metricsFile, '');
  }
  if (o.resume && main) {
    // Drop metric lines of an epoch whose checkpoint was not written (interrupted in between).
    const lines = existsSync(metricsFile) ? readFileSync(metricsFile, 'utf8').split('\n').filter((l) => l.trim() !== '') : [];
    writeFileAtomic(metricsFile, lines.filter((l) => (JSON.parse(l) as { epoch: number }).epoch <= state.epoch).map((l) => `${l}\n`).join(''));
  }
  return state;
}

// dfkd import, and the flags that let `--teacher` / `--model` take a timm or Hugging Face checkpoint
// directly (--heads, --mean, --std, --classes; --dataset where the command has it). The engine is
// loaded lazily: main.ts imports this file to declare the flags.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { TeacherImportOptions } from '../models/load.js';

/** The flag values (as commander parses them). */
export interface ImportCliOptions {
  heads?: number;
  mean?: string;
  std?: string;
  classes?: string;
  dataset?: string;
}

function headsArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** Adds --heads, --mean, --std, --classes to a command that reads a model (what an imported checkpoint's files may not say). */
export function addImportOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--heads <n>', 'timm / Hugging Face checkpoint: attention heads (not in the tensor shapes; a Hugging Face config.json has them)').argParser(headsArg))
    .option('--mean <values>', "timm / HF checkpoint: the input normalisation's mean — one value per channel (comma-separated), one for all, or imagenet | inception")
    .option('--std <values>', 'timm / HF checkpoint: the normalisation std (as --mean)')
    .option('--classes <names|file>', "timm / HF checkpoint: class names by index, comma-separated or a file with one a line (default: config.json's id2label, else --dataset's)");
}

/** The library options of the flags; --classes as a file (one name a line) or a comma-separated list. */
export function importOptionsOf(o: ImportCliOptions): TeacherImportOptions {
  let classes: string[] | undefined;
  if (o.classes !== undefined) {
    const fromFile = existsSync(o.classes) && statSync(o.classes).isFile();
    classes = (fromFile ? readFileSync(o.classes, 'utf8').split(/\r?\n/) : o.classes.split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
    if (classes.length === 0) throw new Error(`--classes ${o.classes}: no class names`);
  }
  return { heads: o.heads, mean: o.mean, std: o.std, classes, dataset: o.dataset };
}

const say = (s: string): void => void process.stdout.write(`${s}\n`);

/** dfkd import <checkpoint> --out <dir>: a dfkd teacher folder from a timm / Hugging Face checkpoint. */
export async function runImportCommand(src: string, o: ImportCliOptions & { out: string }): Promise<void> {
  const { importTeacher } = await import('../models/load.js');
  const t = importTeacher(src, o.out, importOptionsOf(o));
  const c = t.card;
  say(`dfkd import: ${src} (${t.imported!.naming === 'hf' ? 'Hugging Face' : 'timm'} naming) → ${o.out}`);
  for (const n of t.imported!.notes) say(`  ${n}`);
  say(`  ${c.preset} ${JSON.stringify(c.overrides)}`);
  say(`  ${c.params.toLocaleString()} params, input [${c.inputShape.join(', ')}], mean ${c.mean.join(', ')}, std ${c.std.join(', ')}, ${c.numClasses} classes (${c.classNames.slice(0, 5).join(', ')}${c.numClasses > 5 ? ', …' : ''})`);
  say(`saved ${join(o.out, 'model.safetensors')} and model.json${c.dataset ? `; dfkd eval --model ${o.out} evaluates it on ${c.dataset}` : ''}`);
}

/**
 * dfkd distill with a timm / HF teacher: imports it into <out>/teacher (so the run folder holds the
 * teacher it distilled, as a dfkd model) and returns that folder; a dfkd teacher is returned as is.
 * Distillation evaluates on a labelled dataset, so an imported teacher needs --dataset.
 */
export async function distillTeacherPath(teacher: string, out: string, o: ImportCliOptions): Promise<string> {
  const { foreignCheckpoint, importTeacher } = await import('../models/load.js');
  if (!foreignCheckpoint(teacher)) {
    const given = (['heads', 'mean', 'std', 'classes', 'dataset'] as const).filter((k) => o[k] !== undefined);
    if (given.length > 0) throw new Error(`--${given[0]} is for a timm / Hugging Face teacher; ${teacher} is a dfkd model whose model.json says it all`);
    return teacher;
  }
  if (o.dataset === undefined) {
    throw new Error(`--dataset is needed with the timm / Hugging Face teacher ${teacher}: the student (and the teacher) are evaluated on its labelled val / test splits (e.g. --dataset 'folder:<dir>?size=224&channels=3'); the distillation itself uses no image of it`);
  }
  const dir = join(out, 'teacher');
  importTeacher(teacher, dir, importOptionsOf(o));
  say(`imported the teacher ${teacher} into ${dir}`);
  return dir;
}

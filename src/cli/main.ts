#!/usr/bin/env node
// dfkd: the command-line interface. Thin: parse, call the library, print, exit with a code.
import { Command, InvalidArgumentError, Option } from 'commander';

const program = new Command();

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}
function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}
function nonNegativeNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a non-negative number');
  return n;
}
function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/** Threads must be set before libtorch is loaded, so the engine is imported lazily. */
async function engine(threads?: number, device = 'cpu'): Promise<typeof import('../tensor/tensor.js')> {
  if (threads !== undefined) process.env.VIT_DFKD_THREADS = String(threads);
  const T = await import('../tensor/tensor.js');
  if (device !== 'cpu') T.setDefaultDevice(device as 'cuda');
  return T;
}

export interface TrainCliOptions {
  dataset: string;
  model: string;
  out: string;
  epochs: number;
  batch: number;
  lr: number;
  weightDecay: number;
  warmupEpochs: number;
  labelSmoothing: number;
  translate: number;
  flip: boolean;
  clipNorm: number;
  dropPath?: number;
  seed: number;
  threads?: number;
  device: string;
  resume: boolean;
  stopAfterEpochs?: number;
}

program
  .name('dfkd')
  .description('vit-dfkd: compress Vision Transformers without their training data (libtorch engine)')
  .version('0.1.0')
  .showHelpAfterError();

program
  .command('demo')
  .description('the main job: train a small ViT on real MNIST for about a minute and print its test accuracy')
  .addOption(new Option('--seconds <s>', 'training time budget in seconds').argParser(positiveNumber).default(60))
  .addOption(new Option('--seed <n>', 'random seed').argParser(nonNegativeInt).default(0))
  .addOption(new Option('--model <preset>', 'model preset').default('vit-tiny-28'))
  .addOption(new Option('--out <dir>', 'output folder').default('runs/demo'))
  .addOption(new Option('--threads <n>', 'intra-op threads (default: all cores)').argParser(positiveInt))
  .action(async (o: { seconds: number; seed: number; model: string; out: string; threads?: number }) => {
    await engine(o.threads);
    const { runDemo } = await import('./demo.js');
    runDemo(o);
  });

program
  .command('train')
  .alias('train-teacher')
  .description('train a classifier (a teacher, or the `scratch` student reference) on real labelled data')
  .requiredOption('--dataset <spec>', "dataset: mnist | fashion-mnist | cifar10:<dir> | folder:<dir>")
  .requiredOption('--model <preset>', 'model preset (dfkd models lists them)')
  .requiredOption('--out <dir>', 'run folder (config.json, metrics.jsonl, checkpoints/, model.safetensors)')
  .addOption(new Option('--epochs <n>', 'epochs').argParser(positiveInt).default(30))
  .addOption(new Option('--batch <n>', 'batch size').argParser(positiveInt).default(64))
  .addOption(new Option('--lr <x>', 'peak learning rate (AdamW)').argParser(positiveNumber).default(2e-3))
  .addOption(new Option('--weight-decay <x>', 'AdamW weight decay').argParser(nonNegativeNumber).default(0.05))
  .addOption(new Option('--warmup-epochs <x>', 'linear warm-up before the cosine decay').argParser(nonNegativeNumber).default(1))
  .addOption(new Option('--label-smoothing <x>', 'label smoothing').argParser(nonNegativeNumber).default(0.1))
  .addOption(new Option('--translate <px>', 'random translation, ± pixels').argParser(nonNegativeInt).default(2))
  .option('--flip', 'random horizontal flips (not for digits)', false)
  .addOption(new Option('--clip-norm <x>', 'gradient clipping by global norm (0 = off)').argParser(nonNegativeNumber).default(1))
  .addOption(new Option('--drop-path <x>', 'stochastic depth rate (ViT)').argParser(nonNegativeNumber))
  .addOption(new Option('--seed <n>', 'random seed').argParser(nonNegativeInt).default(0))
  .addOption(new Option('--threads <n>', 'intra-op threads (default: all cores)').argParser(positiveInt))
  .addOption(new Option('--device <d>', 'cpu or cuda').default('cpu'))
  .option('--resume', 'continue the run in --out from its last checkpoint', false)
  .addOption(new Option('--stop-after-epochs <n>', 'stop after this many epochs of this invocation (resume later)').argParser(positiveInt))
  .action(async (o: TrainCliOptions) => {
    await engine(o.threads, o.device);
    const { runTrainCommand } = await import('./train.js');
    await runTrainCommand(o);
  });

program
  .command('eval')
  .description('evaluate a trained classifier: accuracy, per-class accuracy, confusion matrix, params, FLOPs, latency')
  .requiredOption('--model <path>', 'a run folder or a checkpoint (.safetensors with its .json)')
  .option('--dataset <spec>', 'dataset (default: the one the model was trained on)')
  .addOption(new Option('--split <name>', 'split').choices(['train', 'val', 'test']).default('test'))
  .addOption(new Option('--threads <n>', 'intra-op threads').argParser(positiveInt))
  .option('--json', 'print the result as JSON', false)
  .action(async (o: { model: string; dataset?: string; split: 'train' | 'val' | 'test'; threads?: number; json: boolean }) => {
    await engine(o.threads);
    const { runEvalCommand } = await import('./train.js');
    runEvalCommand(o);
  });

program
  .command('info')
  .description('show the engine: libtorch build, threads, BLAS, CUDA')
  .addOption(new Option('--threads <n>', 'intra-op threads').argParser(positiveInt))
  .action(async (o: { threads?: number }) => {
    const T = await engine(o.threads);
    const { native } = await import('../native/binding.js');
    const cfg = native.buildConfig();
    const version = /TORCH_VERSION=([^,\s]+)/.exec(cfg)?.[1] ?? 'unknown';
    process.stdout.write(
      [
        `libtorch ${version}`,
        `threads: ${T.getNumThreads()}`,
        `cuda: ${T.cudaAvailable() ? `${T.cudaDeviceCount()} device(s)` : 'not available'}`,
        `operators in the dispatcher: ${T.listOps().length}`,
      ].join('\n') + '\n',
    );
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  const err = e as Error;
  process.stderr.write(`dfkd: error: ${err.message}\n`);
  if (process.env.DFKD_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});

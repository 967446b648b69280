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
function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/** Threads must be set before libtorch is loaded, so the engine is imported lazily. */
async function engine(threads?: number): Promise<typeof import('../tensor/tensor.js')> {
  if (threads !== undefined) process.env.VIT_DFKD_THREADS = String(threads);
  return import('../tensor/tensor.js');
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

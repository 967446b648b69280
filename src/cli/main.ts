#!/usr/bin/env node
// dfkd: the command-line interface. Thin: parse, call the library, print, exit with a code.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { METHODS } from '../distill/methods/index.js';
import { parseEmaDecay } from '../distill/ema.js';
import { hparamFlags, kebab, type DistillCliOptions } from './distill.js';
import { detectHparamFlags } from './detect-distill.js';
import { addImportOptions, type ImportCliOptions } from './import.js';
import type { DistCliOptions } from './launch.js';

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
/** An EMA decay: 0 (off) or in (0, 1) (distill/ema.ts parseEmaDecay). */
function emaDecay(v: string): number {
  try {
    return parseEmaDecay(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}
function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/** The engine, with the thread count and default device the user asked for. */
async function engine(threads?: number, device = 'cpu'): Promise<typeof import('../tensor/tensor.js')> {
  const T = await import('../tensor/tensor.js');
  if (threads !== undefined) T.setNumThreads(threads);
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
  schedule: 'cosine' | 'onecycle';
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
  force: boolean;
  stopAfterEpochs?: number;
  init?: string;
}

/** Data-parallel flags (launch.ts), for distill and train. */
function addDistOptions(cmd: Command): void {
  cmd
    .addOption(new Option('--nproc <n>', 'data-parallel: run as n ranks on this machine (c10d, Gloo; the threads are split between them; --batch is the global batch)').argParser(positiveInt))
    .addOption(new Option('--rank <r>', "data-parallel across machines: this process's rank (0 … world size - 1; default: $RANK)").argParser(nonNegativeInt))
    .addOption(new Option('--world-size <w>', 'data-parallel across machines: the number of ranks (default: $WORLD_SIZE)').argParser(positiveInt))
    .option('--master-addr <host>', "rank 0's address, where it serves the c10d TCPStore (default: $MASTER_ADDR)")
    .addOption(new Option('--master-port <port>', "rank 0's TCPStore port (default: $MASTER_PORT)").argParser(positiveInt))
    .addOption(new Option('--dist-timeout <s>', 'data-parallel: how many seconds a rank waits for the others in a collective before the run fails').argParser(positiveNumber).default(300));
}

/** The options given on the command line (or through the environment), as opposed to defaults. */
function explicitOptions(cmd: Command): Set<string> {
  return new Set(cmd.options.map((opt) => opt.attributeName()).filter((k) => ['cli', 'env'].includes(cmd.getOptionValueSource(k) ?? '')));
}

program
  .name('dfkd')
  .description('vit-dfkd: compress Vision Transformers without their training data (libtorch engine)')
  .version('0.1.0')
  .showHelpAfterError();

program
  .command('demo')
  .description('the main job: the shipped MNIST ViT teacher → data-free distillation (tgan) into a small ViT student for ~5 minutes → test accuracy, retention, report')
  .addOption(new Option('--minutes <m>', 'time budget').argParser(positiveNumber).default(5))
  .addOption(new Option('--seed <n>', 'random seed').argParser(nonNegativeInt).default(0))
  .addOption(new Option('--method <name>', 'method').choices(Object.keys(METHODS)).default('tgan'))
  .addOption(new Option('--student <preset>', 'student preset').default('vit-student-28'))
  .addOption(new Option('--out <dir>', 'run folder').default('runs/demo'))
  // 1 thread: on this project's 2-core machines the demo's run does 1.22 it/s at 1 thread, 0.72 at 2 and
  // 1.15 as 2 data-parallel ranks (bench/results/ddp.json), so 1 thread reaches the most iterations.
  .addOption(new Option('--threads <n>', 'intra-op threads (1 is fastest for this small run)').argParser(positiveInt).default(1))
  .option('--no-onnx', 'skip exporting the student to <out>/model.onnx and <out>/model.int8.onnx (int8 calibrated on the run\'s own synthetic images) for dfkd serve')
  .action(async (o: { minutes: number; seed: number; method: string; student: string; out: string; threads?: number; onnx: boolean }) => {
    await engine(o.threads);
    const { runDemo } = await import('./demo.js');
    await runDemo(o);
  });

const train = program
  .command('train')
  .alias('train-teacher')
  .description('train a classifier or a detector (a teacher, or the `scratch` student reference) on real labelled data; a detection dataset (canvas-mnist, canvas-fashion-mnist, coco:<json>) trains a DETR preset with its own defaults (batch 32, lr 2e-3, weight decay 1e-4, clip 0.1) unless given')
  .requiredOption('--dataset <spec>', "dataset: mnist | fashion-mnist | cifar10:<dir> | folder:<dir> | detection: canvas-mnist[?n=6000] | canvas-fashion-mnist | coco:<annotations.json>")
  .requiredOption('--model <preset>', 'model preset (dfkd models lists them)')
  .requiredOption('--out <dir>', 'run folder (config.json, metrics.jsonl, checkpoints/, model.safetensors)')
  .addOption(new Option('--epochs <n>', 'epochs').argParser(positiveInt).default(30))
  .addOption(new Option('--batch <n>', 'batch size').argParser(positiveInt).default(64))
  .addOption(new Option('--lr <x>', 'peak learning rate (AdamW)').argParser(positiveNumber).default(2e-3))
  .addOption(new Option('--weight-decay <x>', 'AdamW weight decay').argParser(nonNegativeNumber).default(0.05))
  .addOption(new Option('--schedule <s>', 'learning-rate schedule: cosine (linear warm-up, cosine decay) or onecycle (torch OneCycleLR)').choices(['cosine', 'onecycle']).default('cosine'))
  .addOption(new Option('--warmup-epochs <x>', 'linear warm-up before the cosine decay (cosine schedule)').argParser(nonNegativeNumber).default(1))
  .addOption(new Option('--label-smoothing <x>', 'label smoothing').argParser(nonNegativeNumber).default(0.1))
  .addOption(new Option('--translate <px>', 'random translation, ± pixels').argParser(nonNegativeInt).default(2))
  .option('--flip', 'random horizontal flips (not for digits)', false)
  .addOption(new Option('--clip-norm <x>', 'gradient clipping by global norm (0 = off)').argParser(nonNegativeNumber).default(1))
  .addOption(new Option('--drop-path <x>', 'stochastic depth rate (ViT)').argParser(nonNegativeNumber))
  .addOption(new Option('--seed <n>', 'random seed').argParser(nonNegativeInt).default(0))
  .addOption(new Option('--threads <n>', 'intra-op threads (default: all cores)').argParser(positiveInt))
  .addOption(new Option('--device <d>', 'cpu or cuda').default('cpu'))
  .option('--resume', 'continue the run in --out from its last checkpoint (same settings as it was started with)', false)
  .option('--force', 'if --out already holds a run, move it aside (to <out>.old-<time>) and start a new one', false)
  .addOption(new Option('--stop-after-epochs <n>', 'stop after this many epochs of this invocation (resume later)').argParser(positiveInt))
  .option('--init <model>', "start from this model's weights (a run folder or model .safetensors of the same preset) instead of a random initialisation: fine-tuning, or continuing a finished run with a new schedule")
  .action(async (o: TrainCliOptions & DistCliOptions, cmd: Command) => {
    const { prepareRunFolder } = await import('./run-folder.js');
    const { rankRole, joinGroup, placeRank, prepareRankFolder, launchLocal, leaveGroup } = await import('./launch.js');
    const role = rankRole(o);
    const { isDetectionSpec } = await import('../data/detection.js');
    if (o.init !== undefined && isDetectionSpec(o.dataset)) throw new Error('--init: classifier training only (detection training starts from its preset)');
    if ((role.launcher || role.dist) && isDetectionSpec(o.dataset)) {
      throw new Error('--nproc / --world-size: detection training runs in one process (data-parallel detection distillation works: dfkd distill --task detect --nproc N)');
    }
    // A rank --nproc started: the launcher prepared the folder. A rank started by hand: after joining.
    if (!role.worker && !role.dist) prepareRunFolder(o.out, o, (l) => process.stdout.write(`${l}\n`));
    o.device = await placeRank(role, o.device);
    await engine(o.threads, o.device);
    await joinGroup(role);
    if (role.dist && !role.worker) await prepareRankFolder(o.out, () => prepareRunFolder(o.out, o, (l) => process.stdout.write(`${l}\n`)));
    if (role.launcher) {
      process.exitCode = await launchLocal(o.nproc!, o.threads, {});
      return;
    }
    if (isDetectionSpec(o.dataset)) {
      const { runDetectTrainCommand } = await import('./detect.js');
      const defaults = new Set(['lr', 'batch', 'weightDecay', 'clipNorm'].filter((k) => cmd.getOptionValueSource(k) === 'default'));
      await runDetectTrainCommand(o, defaults);
      return;
    }
    const { runTrainCommand } = await import('./train.js');
    await runTrainCommand(o);
    await leaveGroup();
  });
addDistOptions(train);

const evalCmd = program
  .command('eval')
  .description('evaluate a trained classifier (accuracy, per-class accuracy, confusion matrix) or detector (mAP@[.5:.95], AP50, per-class AP), params, FLOPs, latency')
  .requiredOption('--model <path>', 'a run folder or a checkpoint (.safetensors with its .json), or a timm / Hugging Face ViT / DeiT .safetensors or model folder')
  .option('--dataset <spec>', "dataset (default: the one the model was trained on); a folder: dataset without mean / std uses the model's normalisation")
  .addOption(new Option('--split <name>', 'split').choices(['train', 'val', 'test']).default('test'))
  .addOption(new Option('--threads <n>', 'intra-op threads').argParser(positiveInt))
  .option('--json', 'print the result as JSON', false)
  .option('--png <file>', 'detectors: draw the predictions on the first 16 images of the split into this PNG')
  .action(async (o: { model: string; dataset?: string; split: 'train' | 'val' | 'test'; threads?: number; json: boolean; png?: string } & ImportCliOptions) => {
    await engine(o.threads);
    const { isDetectorCheckpoint } = await import('../detect/run.js');
    if (isDetectorCheckpoint(o.model)) {
      const { runDetectEvalCommand } = await import('./detect.js');
      runDetectEvalCommand(o);
      return;
    }
    const { runEvalCommand } = await import('./train.js');
    runEvalCommand(o);
  });
addImportOptions(evalCmd);

addImportOptions(
  program
    .command('import')
    .description('a dfkd teacher folder (model.safetensors + model.json) from a timm or Hugging Face ViT / DeiT checkpoint: a .safetensors file, or a folder with config.json + model.safetensors; architecture from the tensor shapes and config.json, the rest from the flags')
    .argument('<checkpoint>', 'a timm / Hugging Face .safetensors file or model folder')
    .requiredOption('--out <dir>', 'the teacher folder to write')
    .option('--dataset <spec>', "the labelled dataset the teacher is evaluated on (its class names unless --classes; a folder: dataset gets the teacher's normalisation)"),
).action(async (src: string, o: ImportCliOptions & { out: string }) => {
  await engine();
  const { runImportCommand } = await import('./import.js');
  await runImportCommand(src, o);
});

const distill = program
  .command('distill')
  .description('distil a teacher into a student without training data (or run a reference: kd, noise, scratch)')
  .option('--teacher <path>', 'teacher: a run folder made by dfkd train, a checkpoint, or a timm / Hugging Face ViT / DeiT .safetensors or model folder (imported into <out>/teacher); required, except with --resume')
  .option('--student <preset>', 'student model preset (required, except with --resume)')
  .addOption(new Option('--method <name>', 'method').choices(Object.keys(METHODS)).default('tgan'))
  .addOption(new Option('--iterations <n>', 'iteration budget').argParser(positiveInt))
  .addOption(new Option('--minutes <m>', 'time budget in minutes (default 10 when no --iterations)').argParser(positiveNumber))
  .addOption(new Option('--batch <n>', 'synthetic batch size').argParser(positiveInt).default(128))
  .addOption(new Option('--seed <n>', 'random seed').argParser(nonNegativeInt).default(0))
  .addOption(new Option('--eval-every <k>', 'student accuracy on the real validation split every k iterations (evaluation only)').argParser(positiveInt).default(50))
  .addOption(new Option('--sample-every <k>', 'sample grid every k iterations').argParser(positiveInt).default(100))
  .addOption(new Option('--checkpoint-every <k>', 'checkpoint every k iterations').argParser(positiveInt).default(50))
  .addOption(new Option('--student-lr <x>', "student learning rate (default: the method's)").argParser(positiveNumber))
  .addOption(new Option('--student-init <how>', "student's initial weights: select (weight selection from the teacher's, Xu et al. 2024: first-N blocks, evenly spaced channels; data-free), random, or auto: select for a student of the teacher's family, random otherwise and for scratch").choices(['auto', 'select', 'random']).default('auto'))
  .option('--no-cosine', 'keep the student learning rate constant (default: cosine decay over the budget)')
  .addOption(new Option('--clip-norm <x>', 'student gradient clipping (0 = off)').argParser(nonNegativeNumber).default(5))
  .addOption(new Option('--student-ema <decay>', "evaluate and report an exponential moving average of the student's weights (e.g. 0.99; the raw student keeps training; 0 = off, the last iterate)").argParser(emaDecay).default(0))
  .option('--out <dir>', 'run folder (default runs/distill-<method>-<time>)')
  .option('--resume', "continue the run in --out from its last checkpoint, with the run's own settings (flags left out are the run's; a given flag that differs is refused)", false)
  .option('--force', 'if --out already holds a run, move it aside (to <out>.old-<time>) and start a new one', false)
  .addOption(new Option('--extend-minutes <m>', 'with --resume: give a time-budget run this many more minutes').argParser(positiveNumber))
  .addOption(new Option('--extend-iterations <n>', 'with --resume: give an iteration-budget run this many more iterations').argParser(positiveInt))
  .option('--generator-process', "detection with tgan at --lambda-adv 0: run the generator in a second process, on another core, while the student trains (same result as without; run both at --threads 1 on 2 cores)", false)
  .option('--no-report', 'skip report.html')
  .addOption(new Option('--threads <n>', 'intra-op threads (default: all cores)').argParser(positiveInt))
  .addOption(new Option('--device <d>', 'cpu or cuda').default('cpu'))
  .addOption(new Option('--task <t>', "classify or detect (default: the teacher's: a DETR teacher distils with tgan, dfad, deepinv or kd; batch 32 unless given)").choices(['classify', 'detect']))
  .option('--dataset <spec>', 'timm / HF teacher: the labelled dataset the student and teacher are evaluated on (val / test only)');
addImportOptions(distill);
addDistOptions(distill);
const classifyFlags = hparamFlags();
const detectFlags = detectHparamFlags();
const defaultsOf = (f: { defaults: Record<string, unknown> }): string => Object.entries(f.defaults).map(([m, v]) => `${m} ${v}`).join(', ');
for (const [name, f] of classifyFlags) {
  // One flag, read by the task that runs: a name both tasks use lists both tasks' defaults.
  const d = detectFlags.get(name);
  distill.addOption(new Option(`--${kebab(name)} <value>`, `method hyper-parameter (default: ${defaultsOf(f)}${d ? `; detection: ${defaultsOf(d)}` : ''})`));
}
for (const [name, f] of detectFlags) {
  if (classifyFlags.has(name)) continue;
  distill.addOption(new Option(`--${kebab(name)} <value>`, `detection hyper-parameter (default: ${defaultsOf(f)})`));
}
distill.action(async (given: DistillCliOptions & ImportCliOptions & DistCliOptions & { threads?: number; device: string; task?: 'classify' | 'detect' }, cmd: Command) => {
  const { checkBudgetFlags, resumeOptions } = await import('./distill.js');
  const { rankRole, joinGroup, placeRank, prepareRankFolder, launchLocal } = await import('./launch.js');
  checkBudgetFlags(given);
  const { dist, worker, launcher } = rankRole(given);
  if ((launcher || dist) && given.generatorProcess) throw new Error('--generator-process and data-parallel ranks (--nproc, --world-size) do not go together: give the ranks the cores instead');
  // --resume: the run's own settings for every flag not given, a refusal for a given one that differs.
  let o = given;
  if (given.resume) {
    const r = resumeOptions(given, explicitOptions(cmd));
    o = { ...given, ...r, task: given.task ?? (r.task === 'detect' ? 'detect' : undefined) };
  }
  for (const flag of ['teacher', 'student'] as const) if (!o[flag]) throw new Error(`required option '--${flag} <${flag === 'teacher' ? 'path' : 'preset'}>' not specified`);
  if (worker) {
    // A rank started by --nproc: the launcher prepared the folder and imported a foreign teacher.
    o.teacher = process.env.DFKD_DIST_TEACHER ?? o.teacher;
    o.folderReady = true;
    o.out = process.env.DFKD_DIST_OUT ?? o.out;
  }
  o.device = await placeRank({ dist, worker, launcher }, o.device);
  await engine(o.threads, o.device);
  await joinGroup({ dist, worker, launcher });
  if (worker) return runDistillTask(o, cmd);
  const { distillTeacherPath } = await import('./import.js');
  const { defaultDistillOut } = await import('./distill.js');
  const { prepareRunFolder } = await import('./run-folder.js');
  if (dist && o.out === undefined) throw new Error('a data-parallel run needs --out, the same on every rank (the default folder is named after the time the rank started)');
  const out = (o.out ??= defaultDistillOut(o.method));
  if (!existsSync(o.teacher)) throw new Error(`the teacher ${o.teacher} does not exist (a dfkd run or teacher folder, or a timm / Hugging Face checkpoint)`);
  await prepareRankFolder(
    out,
    async () => {
      // The folder first: a foreign teacher is imported into <out>/teacher.
      prepareRunFolder(out, o, (l) => process.stdout.write(`${l}\n`));
      o.teacher = await distillTeacherPath(o.teacher, out, o);
    },
    async () => {
      const { foreignCheckpoint } = await import('../models/load.js');
      if (foreignCheckpoint(o.teacher)) o.teacher = join(out, 'teacher');
    },
  );
  o.folderReady = true;
  if (launcher) {
    const code = await launchLocal(given.nproc!, o.threads, { DFKD_DIST_TEACHER: o.teacher, DFKD_DIST_OUT: o.out });
    process.exitCode = code;
    return;
  }
  return runDistillTask(o, cmd);
});

async function runDistillTask(o: DistillCliOptions & ImportCliOptions & { threads?: number; device: string; task?: 'classify' | 'detect' }, cmd: Command): Promise<void> {
  const { leaveGroup } = await import('./launch.js');
  const { isDetectorCheckpoint } = await import('../detect/run.js');
  if (o.generatorProcess && o.device !== 'cpu') throw new Error('--generator-process runs on the CPU only (its second process would not share the GPU run\'s device)');
  if ((o.task ?? (isDetectorCheckpoint(o.teacher) ? 'detect' : 'classify')) === 'detect') {
    const { runDetectDistillCommand } = await import('./detect-distill.js');
    if (!o.resume && cmd.getOptionValueSource('batch') === 'default') o.batch = 32;
    runDetectDistillCommand(o);
    await leaveGroup();
    return;
  }
  const detectOnly = [...detectFlags.keys()].filter((k) => !classifyFlags.has(k) && o[k] !== undefined);
  if (detectOnly.length > 0) throw new Error(`--${kebab(detectOnly[0]!)} is a detection hyper-parameter; the teacher ${o.teacher} is a classifier (use a detector teacher or --task detect)`);
  if (o.generatorProcess) throw new Error(`--generator-process is for detection distillation; the teacher ${o.teacher} is a classifier`);
  const { runDistillCommand } = await import('./distill.js');
  runDistillCommand(o);
  await leaveGroup();
}

program
  .command('export')
  .description('export a trained classifier (ViT/DeiT, LeNet-5, ResNet) or DETR detector to ONNX (standard operators, weights as initialisers, metadata), checked against libtorch in ONNX Runtime before writing')
  .requiredOption('--model <path>', 'a run folder made by dfkd train / distill (classifier or detector), or a checkpoint')
  .requiredOption('--onnx <file>', 'output .onnx file')
  .addOption(new Option('--opset <n>', 'ONNX opset (13-21)').argParser(positiveInt).default(17))
  .option('--dynamic-batch', "a symbolic batch dimension ('batch') instead of a fixed one", false)
  .addOption(new Option('--batch <n>', 'fixed batch size (without --dynamic-batch)').argParser(positiveInt).default(1))
  .option('--no-fold-normalization', 'take normalised input ((x - mean) / std) instead of [0, 1] pixels')
  .option('--no-attention', "ViT: leave out the 'attention' output (class-token attention map)")
  .addOption(new Option('--verify <n>', 'parity check on n real test images before writing (0 = skip)').argParser(nonNegativeInt).default(100))
  .addOption(new Option('--tolerance <x>', 'largest max-abs difference allowed by the parity check').argParser(positiveNumber).default(1e-4))
  .option('--eval', 'test accuracy (detectors: mAP) through ONNX Runtime and through vit-dfkd', false)
  .option('--json', 'print the result as JSON', false)
  .addOption(new Option('--quantize <type>', 'static int8 quantisation (QDQ) calibrated on synthetic images of the run\'s generator or image bank; float and int8 test accuracy side by side').choices(['int8']))
  .option('--calibrate-from <run>', 'with --quantize: calibrate on synthetic images of this distillation run (default: the model\'s own run)')
  .addOption(new Option('--calibration-images <n>', 'with --quantize: synthetic calibration images').argParser(nonNegativeInt).default(256))
  .addOption(new Option('--calibration-seed <n>', 'with --quantize: seed of the calibration images').argParser(nonNegativeInt).default(0))
  .option('--quantize-attention', 'with --quantize: also quantise the ViT attention products (q·kᵀ, softmax·v)', false)
  .option('--no-reduce-range', 'with --quantize: 8-bit weights (default 7-bit: exact on AVX2 CPUs without VNNI; use 8-bit for VNNI / ARM targets)')
  .addOption(new Option('--threads <n>', 'libtorch intra-op threads').argParser(positiveInt))
  .action(async (o: import('./export.js').ExportCliOptions & { threads?: number }) => {
    await engine(o.threads);
    const { runExportCommand } = await import('./export.js');
    await runExportCommand(o);
  });

program
  .command('serve')
  .description('the browser demo on localhost: draw or upload a digit, an exported model classifies it in onnxruntime-web (wasm); detectors draw their boxes')
  .option('--model <path...>', 'models to serve: .onnx files made by dfkd export, or run folders (exported in memory)', ['teachers/mnist-vit', 'teachers/mnist-lenet5'])
  .addOption(new Option('--port <n>', 'port (0 = any free port)').argParser(nonNegativeInt).default(8080))
  .option('--host <address>', 'address to listen on', '127.0.0.1')
  .option('--int8', "also serve an int8 model of every classifier that has none beside it (dfkd export --quantize int8's quantiser, calibrated on synthetic images of the model's run): the page switches float / int8 and times both", false)
  .option('--calibrate-from <run>', "with --int8: calibrate on synthetic images of this distillation run (default: each model's own run)")
  .addOption(new Option('--calibration-images <n>', 'with --int8: synthetic calibration images').argParser(positiveInt).default(256))
  .action(async (o: { model: string[]; port: number; host: string; int8: boolean; calibrateFrom?: string; calibrationImages: number }) => {
    const { runServeCommand } = await import('./serve.js');
    await runServeCommand({ models: o.model, port: o.port, host: o.host, int8: o.int8, calibrateFrom: o.calibrateFrom, calibrationImages: o.calibrationImages });
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

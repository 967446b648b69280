// Fault injection for run folders (issue 19): a `dfkd` command is killed with SIGKILL at a chosen
// moment — inside a checkpoint or atomic write (the DFKD_FAULT_PAUSE hook of util/fs.ts stops the
// process there) or after a random delay — then resumed with `--resume` the way a user would; the
// resumed run's artifacts must be byte-identical to an uninterrupted run's, and no temporary file
// may survive. Used by test/faults.test.ts and `npm run bench -- faults`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isWriteTemporary } from '../export/checkpoint.js';
import { manualSeed } from '../tensor/tensor.js';
import { createDetector } from '../models/detr.js';
import { loadDetectionDataset } from '../data/detection.js';
import { detectorCard, publishDetector } from '../detect/run.js';

export interface FaultCase {
  name: string;
  /** The command after `dfkd`, without --out. */
  args: string[];
  /** The resume command after `dfkd`, without --out (it ends with --resume). */
  resumeArgs: string[];
  /** Files of the run folder that must be byte-identical to the uninterrupted run's. */
  identical: string[];
  /** JSON-lines files compared row by row without their wall-time fields (`seconds`). */
  rows?: string[];
}

export type FaultMoment = { phase: string } | { delayMs: number };

export interface FaultTrialResult {
  case: string;
  moment: string;
  /** Killed at that moment (false: the run finished before it; the trial then checks a plain re-run). */
  killed: boolean;
  /** The resume found no checkpoint (killed before the first), so the run was restarted with --force. */
  restarted: boolean;
  exact: boolean;
  leftovers: string[];
  detail: string;
}

/** Temporary files and generator-process folders left anywhere under `dir`. */
export function leftovers(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        if (name === 'feed') found.push(p);
        walk(p);
      } else if (isWriteTemporary(name)) found.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return found;
}

function runSync(cli: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stderr: r.stderr };
}

/** Spawns the command and SIGKILLs it at the moment; resolves with whether it was killed. */
function runAndKill(cli: string, args: string[], moment: FaultMoment, marker: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    rmSync(marker, { force: true });
    const env = { ...process.env, ...('phase' in moment ? { DFKD_FAULT_PAUSE: moment.phase, DFKD_FAULT_MARKER: marker } : {}) };
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let killed = false;
    const kill = (): void => {
      if (child.exitCode === null && !killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const started = Date.now();
    const timer = setInterval(() => {
      if ('phase' in moment ? existsSync(marker) : Date.now() - started >= moment.delayMs) kill();
      else if (Date.now() - started > timeoutMs) {
        kill();
        clearInterval(timer);
        reject(new Error(`${args.join(' ')}: not at ${JSON.stringify(moment)} after ${timeoutMs} ms`));
      }
    }, 5);
    child.on('exit', (code) => {
      clearInterval(timer);
      // A process the killed one started (the generator process) may still hold the pipe for a moment.
      child.stderr!.destroy();
      if (!killed && code !== 0) reject(new Error(`${args.join(' ')} failed (${code}): ${stderr.trim().split('\n').pop()}`));
      else resolve(killed);
    });
  });
}

const withoutSeconds = (file: string): string =>
  readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => {
    const row = JSON.parse(l) as Record<string, unknown>;
    delete row.seconds;
    return JSON.stringify(row);
  }).join('\n');

/** Compares a run folder with the reference; returns what differs ('' when exact). */
export function compareRuns(c: FaultCase, ref: string, out: string): string {
  const diffs: string[] = [];
  for (const f of c.identical) {
    const a = join(ref, f);
    const b = join(out, f);
    if (!existsSync(b)) diffs.push(`${f} missing`);
    else if (!readFileSync(a).equals(readFileSync(b))) diffs.push(`${f} differs`);
  }
  for (const f of c.rows ?? []) if (existsSync(join(ref, f)) && withoutSeconds(join(ref, f)) !== withoutSeconds(join(out, f))) diffs.push(`${f} rows differ`);
  return diffs.join('; ');
}

/** Makes the uninterrupted reference run of a case in `ref` (once). */
export function referenceRun(cli: string, c: FaultCase, ref: string): void {
  if (existsSync(join(ref, c.identical[0]!))) return;
  rmSync(ref, { recursive: true, force: true });
  const r = runSync(cli, [...c.args, '--out', ref]);
  if (r.status !== 0) throw new Error(`reference run of ${c.name} failed: ${r.stderr}`);
}

/** One trial: kill at the moment, resume (restart with --force if nothing was checkpointed), compare. */
export async function faultTrial(cli: string, c: FaultCase, ref: string, out: string, moment: FaultMoment, timeoutMs = 300_000): Promise<FaultTrialResult> {
  referenceRun(cli, c, ref);
  rmSync(out, { recursive: true, force: true });
  const label = 'phase' in moment ? moment.phase : `${moment.delayMs} ms`;
  const killed = await runAndKill(cli, [...c.args, '--out', out], moment, `${out}.marker`, timeoutMs);
  rmSync(`${out}.marker`, { force: true });
  let restarted = false;
  let r = runSync(cli, [...c.resumeArgs, '--out', out]);
  if (r.status !== 0 && /has no checkpoint to resume from|does not exist/.test(r.stderr)) {
    restarted = true;
    r = runSync(cli, [...c.args, '--out', out, '--force']);
  }
  if (r.status !== 0) return { case: c.name, moment: label, killed, restarted, exact: false, leftovers: leftovers(out), detail: `resume failed: ${r.stderr.trim()}` };
  const detail = compareRuns(c, ref, out);
  // --force moved a partial run aside: those folders are the user's, not leftovers, but tidy them.
  if (restarted) for (const d of readdirSync(join(out, '..')).filter((n) => n.startsWith(`${out.split('/').pop()}.old-`))) rmSync(join(out, '..', d), { recursive: true, force: true });
  return { case: c.name, moment: label, killed, restarted, exact: detail === '', leftovers: leftovers(out), detail };
}

/** The moments of a standard suite: inside each write of a checkpoint, inside atomic writes, and seeded random times. */
export function faultMoments(nRandom: number, maxDelayMs: number, seed = 1): FaultMoment[] {
  let s = seed >>> 0;
  const rand = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return [
    { phase: 'checkpoint-prev-linked@1' },
    { phase: 'checkpoint-before-weights@2' },
    { phase: 'checkpoint-weights-written@2' },
    { phase: 'atomic-tmp-written@7' },
    ...Array.from({ length: nRandom }, () => ({ delayMs: Math.round(300 + rand() * maxDelayMs) })),
  ];
}

/** A small detection dataset and an untrained DETR teacher at 32×32 over it: quick runs for the crash tests. */
export const TINY_DETECTION_SPEC = 'canvas-mnist?n=16&nval=8&ntest=8&size=32&scale=10-16&objects=1-2';
export function makeTinyDetrTeacher(dir: string): void {
  if (existsSync(join(dir, 'model.safetensors'))) return;
  manualSeed(2);
  const data = loadDetectionDataset(TINY_DETECTION_SPEC, 'val');
  const t = createDetector('detr-teacher-64', { imageSize: 32 });
  publishDetector(dir, t, detectorCard({ model: 'detr-teacher-64', modelOverrides: { imageSize: 32 }, dataset: TINY_DETECTION_SPEC }, t, data, { val_map: 0 }));
  t.dispose();
}

/**
 * The suite's commands: dafl on the shipped LeNet-5 pair (20 iterations, a checkpoint every 5),
 * detection tgan on the tiny teacher in one process and with --generator-process (8 iterations, a
 * checkpoint every 2), and dfkd train (LeNet-5 on MNIST, 3 epochs). Resumes give only --resume (and
 * for training, as its README says, the same command).
 */
export function faultCases(o: { lenetTeacher: string; detrTeacher: string }): Record<'classify' | 'detect' | 'detectGp' | 'train', FaultCase> {
  const resume = ['distill', '--resume', '--threads', '1', '--no-report'];
  const detect = (gp: boolean): FaultCase => ({
    name: gp ? 'detect-gp' : 'detect',
    args: ['distill', '--task', 'detect', '--teacher', o.detrTeacher, '--student', 'detr-student-64', '--method', 'tgan', '--iterations', '8', '--batch', '4', '--eval-every', '2', '--checkpoint-every', '2', '--sample-every', '4', '--threshold', '0.05', '--threads', '1', '--no-report', ...(gp ? ['--generator-process'] : [])],
    resumeArgs: resume,
    identical: ['model.safetensors'],
    rows: ['metrics.jsonl'],
  });
  const train = ['train', '--dataset', 'mnist', '--model', 'lenet5-28', '--epochs', '3', '--batch', '128', '--seed', '0', '--threads', '1'];
  return {
    classify: {
      name: 'classify',
      args: ['distill', '--teacher', o.lenetTeacher, '--student', 'lenet5-half-28', '--method', 'dafl', '--iterations', '20', '--batch', '32', '--checkpoint-every', '5', '--eval-every', '5', '--sample-every', '10', '--seed', '0', '--threads', '1', '--no-report'],
      resumeArgs: resume,
      identical: ['model.safetensors'],
      rows: ['metrics.jsonl'],
    },
    detect: detect(false),
    detectGp: detect(true),
    train: { name: 'train', args: train, resumeArgs: [...train, '--resume'], identical: ['model.safetensors'], rows: ['metrics.jsonl'] },
  };
}

/** The training case's moments (an epoch writes best, then last: 2 checkpoints per improving epoch). */
export const TRAIN_MOMENTS: FaultMoment[] = [
  { phase: 'checkpoint-prev-linked@1' },
  { phase: 'checkpoint-before-weights@3' },
  { phase: 'checkpoint-weights-written@2' },
  { phase: 'atomic-tmp-written@4' },
  { delayMs: 2500 },
];

// Data-parallel runs from the CLI (issue 16): which rank this process is, and `--nproc N`, which
// starts N ranks of the same command on this machine (torchrun's job, without Python).
//
//   dfkd distill ... --nproc 2                       two ranks here (FileStore in the temp folder)
//   dfkd distill ... --rank 0 --world-size 2 --master-addr 10.0.0.1 --master-port 29500   (machine A)
//   dfkd distill ... --rank 1 --world-size 2 --master-addr 10.0.0.1 --master-port 29500   (machine B)
//   torchrun --no-python --nnodes 2 --nproc-per-node 4 ... dfkd distill ...   (RANK, WORLD_SIZE, MASTER_* read)
//
// Rank 0 serves the TCPStore at --master-addr:--master-port; every rank must be given the same command.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs.js';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcessGroupOptions } from '../dist/process-group.js';

export interface DistCliOptions {
  nproc?: number;
  rank?: number;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
  /** Seconds any collective may wait for the other ranks before the run fails. */
  distTimeout?: number;
  threads?: number;
}

/** Set in the ranks that `--nproc` starts (they are not launchers themselves). */
const WORKER = 'DFKD_DIST_WORKER';
const STORE = 'DFKD_DIST_STORE';

export function isLaunchedWorker(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[WORKER] === '1';
}

function intFrom(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v} is not a non-negative integer`);
  return n;
}

/**
 * This process's place in a data-parallel run: from --rank/--world-size/--master-*, else torchrun's
 * variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), else (a rank --nproc started) the launcher's.
 * null: a single process (no world, or a world of 1).
 */
export function distSettings(o: DistCliOptions, env: NodeJS.ProcessEnv = process.env): ProcessGroupOptions | null {
  const worker = isLaunchedWorker(env);
  if (!worker && o.nproc !== undefined && o.nproc > 1 && (o.rank !== undefined || o.worldSize !== undefined)) {
    throw new Error('--nproc starts the ranks of one machine itself; --rank / --world-size are for starting each rank by hand (one command per rank)');
  }
  const worldSize = o.worldSize ?? intFrom('WORLD_SIZE', env.WORLD_SIZE);
  const rank = o.rank ?? intFrom('RANK', env.RANK);
  if (worldSize === undefined || worldSize <= 1) {
    if (rank !== undefined && rank > 0) throw new Error(`--rank ${rank} needs --world-size (or WORLD_SIZE) greater than ${rank}`);
    return null;
  }
  if (rank === undefined) throw new Error(`--world-size ${worldSize}: give this process's --rank (0 … ${worldSize - 1}), or RANK`);
  if (rank >= worldSize) throw new Error(`--rank ${rank} is not below --world-size ${worldSize}`);
  const timeoutMs = Math.round((o.distTimeout ?? 300) * 1000);
  const file = worker ? env[STORE] : undefined;
  if (file) return { rank, worldSize, store: { kind: 'file', path: file }, timeoutMs };
  const host = o.masterAddr ?? env.MASTER_ADDR;
  const port = o.masterPort ?? intFrom('MASTER_PORT', env.MASTER_PORT);
  if (!host || port === undefined) throw new Error(`a run of ${worldSize} ranks needs rank 0's address: --master-addr and --master-port (or MASTER_ADDR, MASTER_PORT), the same on every rank`);
  if (port < 1 || port > 65535) throw new Error(`--master-port ${port} is not a TCP port`);
  return { rank, worldSize, store: { kind: 'tcp', host, port }, timeoutMs };
}

/** Intra-op threads per rank when N ranks share this machine: the threads given (or the cores) split between them. */
export function threadsPerRank(nproc: number, threads?: number): number {
  return Math.max(1, Math.floor((threads ?? availableParallelism()) / nproc));
}

/**
 * Runs this same command as `nproc` ranks on this machine and waits for them: rank 0's output is the
 * run's (progress, figures), the others' stderr is shown prefixed with their rank. When a rank fails
 * the others are stopped (they would stop on their own at the next collective, at most the timeout
 * later) and the exit code is the failed rank's. `env` is added to each rank's environment.
 */
export async function launchLocal(nproc: number, threads: number | undefined, env: Record<string, string> = {}): Promise<number> {
  const store = join(tmpdir(), `dfkd-store-${process.pid}-${randomBytes(6).toString('hex')}`);
  const perRank = threadsPerRank(nproc, threads);
  process.stdout.write(`dfkd: ${nproc} ranks on this machine, ${perRank} thread${perRank === 1 ? '' : 's'} each (c10d, Gloo)\n`);
  const children: ChildProcess[] = [];
  let failure: { rank: number; code: number | null; signal: NodeJS.Signals | null } | null = null;
  const forward = (sig: NodeJS.Signals): void => {
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  const onInt = (): void => forward('SIGINT');
  const onTerm = (): void => forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const done = Array.from({ length: nproc }, (_, rank) =>
      new Promise<void>((resolve) => {
        const c = spawn(process.execPath, process.argv.slice(1), {
          env: { ...process.env, ...env, [WORKER]: '1', [STORE]: store, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(nproc), DFKD_DIST_THREADS: String(perRank) },
          stdio: rank === 0 ? 'inherit' : ['ignore', 'ignore', 'pipe'],
        });
        children.push(c);
        c.stderr?.on('data', (d: Buffer) => {
          for (const line of d.toString().split('\n')) if (line.trim() !== '') process.stderr.write(`[rank ${rank}] ${line}\n`);
        });
        c.on('exit', (code, signal) => {
          if ((code !== 0 || signal) && !failure) {
            failure = { rank, code, signal };
            // The others cannot go on without this one: stop them now rather than at their timeout.
            for (const other of children) if (other !== c && other.exitCode === null) other.kill('SIGTERM');
          }
          resolve();
        });
      }),
    );
    await Promise.all(done);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    if (existsSync(store)) rmSync(store, { force: true });
  }
  if (!failure) return 0;
  const f = failure as { rank: number; code: number | null; signal: NodeJS.Signals | null };
  process.stderr.write(`dfkd: error: rank ${f.rank} of ${nproc} ${f.signal ? `was killed (${f.signal})` : `exited with code ${f.code}`}; the other ranks were stopped. Continue the run with --resume.\n`);
  return f.code && f.code !== 0 ? f.code : 1;
}

/** The file rank 0 marks a data-parallel run's folder with (a random id it also sends the other ranks). */
const MARK = '.dfkd-rank0';

/** Marks `out` as prepared by rank 0 of this run; the id (in (0, 1)) goes to the other ranks. */
export function markRunFolder(out: string): number {
  const id = (randomBytes(6).readUIntBE(0, 6) + 1) / 2 ** 48;
  writeFileAtomic(join(out, MARK), `${id}\n`);
  return id;
}

/** Whether `out` is the folder rank 0 prepared (the same machine or a shared file system), not one of this machine's own. */
export function sharedRunFolder(out: string, id: number): boolean {
  const file = join(out, MARK);
  return existsSync(file) && Number(readFileSync(file, 'utf8').trim()) === id;
}

/** What this process is in a data-parallel run: a single process, the `--nproc` launcher, or a rank. */
export interface RankRole {
  /** This rank's place in the group (null: no group: a single process or the launcher). */
  dist: ProcessGroupOptions | null;
  /** A rank `--nproc` started (the launcher prepared the run folder). */
  worker: boolean;
  /** `--nproc N > 1` on the command line: start the ranks, do not train. */
  launcher: boolean;
}

export function rankRole(given: DistCliOptions): RankRole {
  const dist = distSettings(given);
  const worker = isLaunchedWorker();
  if (worker && process.env.DFKD_DIST_THREADS) given.threads = Number(process.env.DFKD_DIST_THREADS);
  return { dist, worker, launcher: !worker && (given.nproc ?? 1) > 1 };
}

/** Joins the group when this process is a rank (blocks until every rank has). */
export async function joinGroup(role: RankRole): Promise<void> {
  if (!role.dist) return;
  const { initDataParallel } = await import('../dist/data-parallel.js');
  const d = role.dist;
  if (d.rank === 0 && !role.worker) process.stdout.write(`dfkd: rank 0 of ${d.worldSize}: waiting for the other ranks at ${d.store.kind === 'tcp' ? `${d.store.host}:${d.store.port}` : d.store.path}\n`);
  initDataParallel(d);
}

/**
 * The run folder of this process: rank 0 (or a single process, or the launcher) runs `prepare`; a
 * rank started by hand that finds rank 0's mark on `out` (the same machine or a shared file system)
 * shares it (`shared` adapts to it), else prepares its own (another machine).
 */
export async function prepareRankFolder(out: string, prepare: () => void | Promise<void>, shared?: () => void | Promise<void>): Promise<void> {
  const { dataParallel } = await import('../dist/data-parallel.js');
  const dp = dataParallel();
  if (dp && dp.rank > 0 && sharedRunFolder(out, dp.agreeMax([0])[0]!)) {
    await shared?.();
    return;
  }
  await prepare();
  // Rank 0 marks the folder and tells the others, which then know whether they share it.
  if (dp?.rank === 0) dp.agreeMax([markRunFolder(out)]);
}

/** Leaves the group after a successful run (no-op without one). */
export async function leaveGroup(): Promise<void> {
  const { shutdownDataParallel } = await import('../dist/data-parallel.js');
  shutdownDataParallel();
}

/**
 * The device and backend of this rank: on CUDA each rank takes the GPU of its LOCAL_RANK (torchrun's
 * and --nproc's) and the group runs on NCCL, which the LibTorch must have; on the CPU, Gloo.
 */
export async function placeRank(role: RankRole, device: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (!role.dist || !device.startsWith('cuda')) return device;
  const { availableBackends } = await import('../dist/process-group.js');
  if (!availableBackends().includes('nccl')) {
    throw new Error(`--device ${device} with data-parallel ranks needs NCCL, which this LibTorch build does not have (backends: ${availableBackends().join(', ')}); build against a CUDA LibTorch (LIBTORCH=... ./setup.sh) or run the ranks on the CPU`);
  }
  role.dist.backend = 'nccl';
  return device === 'cuda' ? `cuda:${intFrom('LOCAL_RANK', env.LOCAL_RANK) ?? 0}` : device;
}

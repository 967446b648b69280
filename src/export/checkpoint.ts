// Tensors <-> safetensors files, and module checkpoints: `<name>.safetensors` (weights) with a
// `<name>.json` config beside it. Writes are atomic; loading checks keys and shapes strictly.
//
// A checkpoint is ONE atomic unit: its config travels inside the weights file's safetensors
// metadata (`config`), with a SHA-256 of every tensor (`sha256`), so one rename publishes weights
// and config together. (It used to be two files renamed one after the other: a kill between the
// renames left the weights of one iteration with the config of another, and --resume continued
// from the wrong iteration — found by fault injection, issue 19.) The `.json` beside it is a
// human-readable mirror; readers use the embedded copy. Before a new checkpoint replaces the old,
// the old is kept as `<name>.prev.safetensors` (a hard link: no copy), so a damaged checkpoint
// falls back to the previous good one (resolveCheckpoint).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, type DType, type Tensor, type TypedArray } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import { readSafetensorsFile, readSafetensorsHeader, writeSafetensorsFile, SafetensorsError, type RawTensor, type SafeDType } from './safetensors.js';
import { ATOMIC_TEMP, atomicTempName, faultPoint, writeJsonAtomic, type AtomicWriteOptions } from '../util/fs.js';

/** One section of a checkpoint's extra tensors: the entries of `t` whose key starts with `prefix`, with the prefix removed. */
export function unprefixed(prefix: string, t: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(t).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

const TO_SAFE: Partial<Record<DType, SafeDType>> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const FROM_SAFE: Record<SafeDType, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

export function toRawTensor(t: Tensor, name = '?'): RawTensor {
  const dtype = TO_SAFE[t.dtype];
  if (!dtype) throw new Error(`safetensors: tensor '${name}' has dtype ${t.dtype}, which safetensors cannot store`);
  const data = t.data();
  return { dtype, shape: t.shape, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function fromRawTensor(r: RawTensor): Tensor {
  const bytes = r.data.byteOffset % 8 === 0 ? r.data : r.data.slice();
  const n = r.shape.reduce((a, b) => a * b, 1);
  let view: TypedArray;
  switch (r.dtype) {
    case 'F64': view = new Float64Array(bytes.buffer, bytes.byteOffset, n); break;
    case 'F32': view = new Float32Array(bytes.buffer, bytes.byteOffset, n); break;
    case 'F16': case 'BF16': view = new Uint16Array(bytes.buffer, bytes.byteOffset, n); break;
    case 'I64': view = new BigInt64Array(bytes.buffer, bytes.byteOffset, n); break;
    case 'I32': view = new Int32Array(bytes.buffer, bytes.byteOffset, n); break;
    case 'I16': view = new Int16Array(bytes.buffer, bytes.byteOffset, n); break;
    case 'I8': view = new Int8Array(bytes.buffer, bytes.byteOffset, n); break;
    case 'U8': case 'BOOL': view = new Uint8Array(bytes.buffer, bytes.byteOffset, n); break;
  }
  return tensor(view, { shape: r.shape, dtype: FROM_SAFE[r.dtype] });
}

/** Writes named tensors to a .safetensors file (atomically). */
export function saveTensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>, opts?: AtomicWriteOptions): void {
  const raw: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries(tensors)) raw[k] = toRawTensor(t, k);
  writeSafetensorsFile(path, raw, metadata, opts);
}

/** SHA-256 over every tensor's name, dtype, shape and bytes, in name order: a checkpoint's checksum. */
export function tensorDigest(raw: Record<string, RawTensor>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(raw).sort()) {
    const r = raw[name]!;
    h.update(`${name}\0${r.dtype}\0${r.shape.join(',')}\0`);
    h.update(r.data);
  }
  return h.digest('hex');
}

/** A checkpoint that cannot be used: truncated, unreadable, or its bytes do not match its checksum. */
export class CorruptCheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptCheckpointError';
  }
}

/** Reads every tensor of a .safetensors file. The caller owns (and disposes) the tensors. */
export function loadTensors(path: string): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  if (!existsSync(path)) throw new SafetensorsError(`safetensors ${path}: file not found`);
  const { tensors, metadata } = readSafetensorsFile(path);
  const out: Record<string, Tensor> = {};
  for (const [k, r] of Object.entries(tensors)) out[k] = fromRawTensor(r);
  return { tensors: out, metadata };
}

/** `runs/x/model` → `runs/x/model.safetensors` and `runs/x/model.json`. */
export function checkpointPaths(base: string): { weights: string; config: string } {
  const stem = base.replace(/\.(safetensors|json)$/, '');
  return { weights: `${stem}.safetensors`, config: `${stem}.json` };
}

/** `runs/x/checkpoints/last` → `runs/x/checkpoints/last.prev.safetensors`: the checkpoint it replaced. */
export const previousCheckpointPath = (base: string): string => `${checkpointPaths(base).weights.replace(/\.safetensors$/, '')}.prev.safetensors`;

function sameFile(a: string, b: string): boolean {
  const x = statSync(a);
  const y = statSync(b);
  return x.ino === y.ino && x.dev === y.dev;
}

/** A hard link where the filesystem has them (no copy of the bytes), else a copy. */
function linkOrCopy(from: string, to: string): void {
  rmSync(to, { force: true });
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/**
 * Saves a module's state dict (plus optional extra tensors, e.g. optimiser state, under their own
 * keys) and its config as one atomic file (the config in the safetensors metadata, with a checksum),
 * keeping the checkpoint it replaces as `<name>.prev.safetensors`; then the `.json` mirror.
 */
export function saveCheckpoint(base: string, module: Module, config: unknown, extra: Record<string, Tensor> = {}): void {
  const { weights, config: cfg } = checkpointPaths(base);
  const raw: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries({ ...module.stateDict(), ...extra })) raw[k] = toRawTensor(t, k);
  const text = JSON.stringify(config);
  if (text === undefined) throw new TypeError(`saveCheckpoint(${base}): config is not JSON-serialisable`);
  const prev = previousCheckpointPath(base);
  // Keep the current checkpoint as the previous one: a hard link under a temporary name, renamed into
  // place (atomic), so `prev` is always a whole file. Not when `prev` already is this very file (a run
  // killed after this step): rename() between two links of one file does nothing and would leave the
  // temporary behind.
  if (existsSync(weights) && !(existsSync(prev) && sameFile(weights, prev))) {
    const tmp = atomicTempName(prev);
    linkOrCopy(weights, tmp);
    faultPoint('checkpoint-prev-linked');
    renameSync(tmp, prev);
  }
  faultPoint('checkpoint-before-weights');
  writeSafetensorsFile(weights, raw, { format: 'vit-dfkd', config: text, sha256: tensorDigest(raw) });
  faultPoint('checkpoint-weights-written');
  writeJsonAtomic(cfg, config);
}

/** The config of a checkpoint: the copy embedded in its weights file when there is one, else the `.json` beside it. */
export function readCheckpointConfig<T = unknown>(base: string): T {
  const { weights, config } = checkpointPaths(base);
  if (existsSync(weights)) {
    let embedded: string | undefined;
    try {
      embedded = readSafetensorsHeader(weights).metadata.config;
    } catch {
      embedded = undefined; // not a readable safetensors file: the loader reports that with its own message
    }
    if (embedded !== undefined) {
      try {
        return JSON.parse(embedded) as T;
      } catch (e) {
        throw new CorruptCheckpointError(`checkpoint ${weights}: its embedded config is not valid JSON: ${(e as Error).message}`);
      }
    }
  }
  if (!existsSync(config)) throw new Error(`checkpoint config ${config} not found`);
  try {
    return JSON.parse(readFileSync(config, 'utf8')) as T;
  } catch (e) {
    throw new Error(`checkpoint config ${config} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Reads a whole checkpoint file and checks it: a readable safetensors file, its checksum (when it has one) and config. Throws CorruptCheckpointError. */
export function verifyCheckpointFile(weights: string): { config: unknown } {
  let file: ReturnType<typeof readSafetensorsFile>;
  try {
    file = readSafetensorsFile(weights);
  } catch (e) {
    throw new CorruptCheckpointError(`checkpoint ${weights} is unreadable: ${(e as Error).message}`);
  }
  const { tensors, metadata } = file;
  if (metadata.sha256 !== undefined && metadata.sha256 !== tensorDigest(tensors)) {
    throw new CorruptCheckpointError(`checkpoint ${weights} is damaged: its tensors do not match its checksum`);
  }
  if (metadata.config === undefined) return { config: undefined };
  try {
    return { config: JSON.parse(metadata.config) };
  } catch (e) {
    throw new CorruptCheckpointError(`checkpoint ${weights}: its embedded config is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Before a resume: whether `base` holds a usable checkpoint. A damaged one (unreadable, checksum
 * mismatch) is replaced by the previous good one (`<name>.prev.safetensors`), with a message; with
 * neither usable, a CorruptCheckpointError. 'none': there is no checkpoint at all.
 */
export function resolveCheckpoint(base: string, log: (line: string) => void = () => {}): 'ok' | 'none' | 'previous' {
  const { weights, config } = checkpointPaths(base);
  const prev = previousCheckpointPath(base);
  if (!existsSync(weights) && !existsSync(prev)) return 'none';
  let problem = `${weights} is missing`;
  if (existsSync(weights)) {
    try {
      const { config: c } = verifyCheckpointFile(weights);
      if (c === undefined && !existsSync(config)) throw new CorruptCheckpointError(`checkpoint ${weights} has no config (neither embedded nor ${config})`);
      return 'ok';
    } catch (e) {
      if (!(e instanceof CorruptCheckpointError)) throw e;
      problem = e.message;
    }
  }
  if (!existsSync(prev)) throw new CorruptCheckpointError(`${problem}, and there is no previous checkpoint to fall back to`);
  let prevConfig: unknown;
  try {
    prevConfig = verifyCheckpointFile(prev).config;
  } catch (e) {
    throw new CorruptCheckpointError(`${problem}, and the previous checkpoint is not usable either: ${(e as Error).message}`);
  }
  if (prevConfig === undefined) throw new CorruptCheckpointError(`${problem}, and the previous checkpoint ${prev} has no embedded config`);
  // Promote the previous checkpoint (one rename), then rewrite the .json mirror from its embedded config.
  linkOrCopy(prev, `${weights}.restore.tmp`);
  renameSync(`${weights}.restore.tmp`, weights);
  writeJsonAtomic(config, prevConfig);
  log(`warning: ${problem}; using the previous good checkpoint (${prev})`);
  return 'previous';
}

/** A temporary file of an atomic write (util/fs.ts's atomicTempName) or of a checkpoint restore. */
export function isWriteTemporary(name: string): boolean {
  return ATOMIC_TEMP.test(name) || name.endsWith('.restore.tmp');
}

/** Whether a process with this pid exists on this machine (signal 0: EPERM means it exists). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes what an interrupted atomic write leaves behind (`.<name>.<pid>.<hex>.tmp`, `*.restore.tmp`)
 * in a run folder and its subfolders (checkpoints/, samples/, ...): called before a run resumes. A
 * temporary whose name holds a live process's pid is kept (a write in flight). Returns the removed paths.
 */
export function removeStaleTemps(dir: string, depth = 2): string[] {
  const removed: string[] = [];
  if (!existsSync(dir)) return removed;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      continue;
    }
    if (isDir) {
      if (depth > 0) removed.push(...removeStaleTemps(p, depth - 1));
    } else {
      if (!isWriteTemporary(name)) continue;
      // A temporary of a live process is an atomic write in flight (another rank of this run writing its
      // config.json while rank 0 tidies before resuming): not stale.
      const pid = ATOMIC_TEMP.exec(name)?.[1];
      if (pid !== undefined && Number(pid) !== process.pid && processAlive(Number(pid))) continue;
      rmSync(p, { force: true });
      removed.push(p);
    }
  }
  return removed;
}

/**
 * Loads weights into a module (strict keys and shapes). Keys with one of `extraPrefixes` are not
 * model weights: they are returned to the caller instead (who disposes them).
 */
export function loadCheckpointInto(base: string, module: Module, extraPrefixes: string[] = []): Record<string, Tensor> {
  const { weights } = checkpointPaths(base);
  if (!existsSync(weights)) throw new SafetensorsError(`safetensors ${weights}: file not found`);
  const file = readSafetensorsFile(weights);
  if (file.metadata.sha256 !== undefined && file.metadata.sha256 !== tensorDigest(file.tensors)) {
    throw new CorruptCheckpointError(`checkpoint ${weights} is damaged: its tensors do not match its checksum`);
  }
  const tensors: Record<string, Tensor> = {};
  for (const [k, r] of Object.entries(file.tensors)) tensors[k] = fromRawTensor(r);
  const model: Record<string, Tensor> = {};
  const extra: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (extraPrefixes.some((p) => k.startsWith(p))) extra[k] = t;
    else model[k] = t;
  }
  try {
    module.loadStateDict(model);
  } catch (e) {
    for (const t of Object.values(extra)) t.dispose();
    (e as Error).message = `${weights}: ${(e as Error).message}`;
    throw e;
  } finally {
    for (const t of Object.values(model)) t.dispose();
  }
  return extra;
}

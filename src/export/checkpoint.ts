// Tensors <-> safetensors files, and module checkpoints: `<name>.safetensors` (weights) with a
// `<name>.json` config beside it. Writes are atomic; loading checks keys and shapes strictly.
import { existsSync, readFileSync } from 'node:fs';
import { tensor, type DType, type Tensor, type TypedArray } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import { readSafetensorsFile, writeSafetensorsFile, SafetensorsError, type RawTensor, type SafeDType } from './safetensors.js';
import { writeJsonAtomic } from '../util/fs.js';

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
export function saveTensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  const raw: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries(tensors)) raw[k] = toRawTensor(t, k);
  writeSafetensorsFile(path, raw, metadata);
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

/**
 * Saves a module's state dict (plus optional extra tensors, e.g. optimiser state, under their own
 * keys) and a JSON config. The JSON is written last, so a config always points at complete weights.
 */
export function saveCheckpoint(base: string, module: Module, config: unknown, extra: Record<string, Tensor> = {}): void {
  const { weights, config: cfg } = checkpointPaths(base);
  saveTensors(weights, { ...module.stateDict(), ...extra }, { format: 'vit-dfkd' });
  writeJsonAtomic(cfg, config);
}

export function readCheckpointConfig<T = unknown>(base: string): T {
  const { config } = checkpointPaths(base);
  if (!existsSync(config)) throw new Error(`checkpoint config ${config} not found`);
  try {
    return JSON.parse(readFileSync(config, 'utf8')) as T;
  } catch (e) {
    throw new Error(`checkpoint config ${config} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Loads weights into a module (strict keys and shapes). Keys with one of `extraPrefixes` are not
 * model weights: they are returned to the caller instead (who disposes them).
 */
export function loadCheckpointInto(base: string, module: Module, extraPrefixes: string[] = []): Record<string, Tensor> {
  const { weights } = checkpointPaths(base);
  const { tensors } = loadTensors(weights);
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

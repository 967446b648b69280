// Loads the libtorch N-API addon (native/addon.cc) and types its surface. Everything above this file
// talks to libtorch only through these functions.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

/** An opaque reference to one native at::Tensor. */
export type NativeHandle = { readonly __nativeTensor: unique symbol };

export interface NativeBinding {
  opId(name: string, overload: string): number;
  call(id: number, args: unknown[], discardResult?: boolean): unknown;
  callByName(name: string, overload: string | null, args: unknown[], kwargs?: Record<string, unknown>): unknown;
  listOps(): string[];
  schema(name: string, overload: string): string;
  shape(h: NativeHandle): number[];
  dtype(h: NativeHandle): string;
  device(h: NativeHandle): string;
  numel(h: NativeHandle): number;
  dispose(h: NativeHandle): void;
  isDisposed(h: NativeHandle): boolean;
  liveTensors(): number;
  isSame(a: NativeHandle, b: NativeHandle): boolean;
  fromTypedArray(data: ArrayBufferView, shape: readonly number[], dtype?: string): NativeHandle;
  toTypedArray(h: NativeHandle): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array | Uint16Array;
  item(h: NativeHandle): number;
  backward(tensors: NativeHandle[], grads: (NativeHandle | null)[] | null, retainGraph?: boolean, createGraph?: boolean): void;
  grad(outputs: NativeHandle[], inputs: NativeHandle[], gradOutputs: (NativeHandle | null)[] | null, retainGraph?: boolean, createGraph?: boolean, allowUnused?: boolean): (NativeHandle | null)[];
  getGrad(h: NativeHandle): NativeHandle | null;
  setGrad(h: NativeHandle, g: NativeHandle | null): void;
  requiresGrad(h: NativeHandle): boolean;
  setRequiresGrad(h: NativeHandle, value: boolean): void;
  isLeaf(h: NativeHandle): boolean;
  retainGrad(h: NativeHandle): void;
  gradFn(h: NativeHandle): string | null;
  setGradEnabled(enabled: boolean): void;
  isGradEnabled(): boolean;
  enterInferenceMode(): number;
  exitInferenceMode(): void;
  isInferenceMode(): boolean;
  isInference(h: NativeHandle): boolean;
  manualSeed(seed: number): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  buildConfig(): string;
  // c10d (src/dist/process-group.ts types these)
  distInit(options: Record<string, unknown>): number;
  distAllReduce(group: number, tensors: NativeHandle[], op: string, timeoutMs?: number): void;
  distAllReduceBuckets(group: number, tensors: NativeHandle[], op: string, bucketBytes: number, timeoutMs?: number): void;
  distBroadcast(group: number, tensors: NativeHandle[], root: number, timeoutMs?: number): void;
  distBarrier(group: number, timeoutMs?: number): void;
  distDestroy(group: number): void;
  distBackends(): string[];
}

function addonPath(): string {
  if (process.env.VIT_DFKD_NATIVE) return process.env.VIT_DFKD_NATIVE;
  // dist/src/native/binding.js and src/native/binding.ts both sit three levels below the package root.
  return fileURLToPath(new URL('../../../native/build/Release/vit_dfkd_native.node', import.meta.url));
}

function load(): NativeBinding {
  const file = addonPath();
  if (!existsSync(file)) {
    throw new Error(
      `vit-dfkd: the native libtorch addon is not built (${file} is missing). ` +
        'Run ./setup.sh on a fresh machine, or `npm run build:native` if libtorch is installed.',
    );
  }
  const require = createRequire(import.meta.url);
  const binding = require(file) as NativeBinding;
  // Debian's libtorch starts with one intra-op thread on these machines; use every core unless told.
  const requested = Number(process.env.VIT_DFKD_THREADS ?? availableParallelism());
  binding.setNumThreads(Number.isInteger(requested) && requested > 0 ? requested : availableParallelism());
  return binding;
}

export const native: NativeBinding = load();

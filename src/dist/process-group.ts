// A c10d process group from TypeScript (issue 16): the same engine PyTorch's DDP runs on, through the
// addon (native/addon.cc). A store lets the ranks find each other — FileStore for ranks on one
// machine (a file they all open), TCPStore for several (rank 0 serves it at --master-addr:port, as
// torchrun's MASTER_ADDR/MASTER_PORT) — and the group runs the collectives: Gloo on CPU, NCCL where
// the addon was built against a CUDA LibTorch that has it.
//
// Every collective is in place, blocks until done, and waits at most `timeoutMs`: a dead peer is an
// Error (Gloo's "connection closed by peer" at once, or "... timed out" after the timeout), never a hang.
import { native, type NativeHandle } from '../native/binding.js';
import type { Tensor } from '../tensor/tensor.js';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

/** DDP's default bucket size (torch.nn.parallel.DistributedDataParallel, bucket_cap_mb=25). */
export const DDP_BUCKET_BYTES = 25 * 1024 * 1024;
/** Default collective timeout: long enough for rank 0's evaluation, which the other ranks wait out. */
export const DEFAULT_TIMEOUT_MS = 300_000;

/** Default rendezvous timeout (torchrun waits 900 s for its ranks; users start machines by hand). */
export const CONNECT_TIMEOUT_MS = 300_000;

export type StoreSpec =
  | { kind: 'file'; path: string }
  | { kind: 'tcp'; host: string; port: number };

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  store: StoreSpec;
  backend?: Backend;
  timeoutMs?: number;
  /**
   * How long the rendezvous may take (reaching rank 0's store, every rank joining): ranks start at
   * different moments, so by default the longer of `timeoutMs` and CONNECT_TIMEOUT_MS. CI failed with
   * it equal to a 1.5 s collective timeout: a rank whose addon loaded first gave up on rank 0's store.
   */
  connectTimeoutMs?: number;
  /** Gloo: the network interface to bind (torch's GLOO_SOCKET_IFNAME); default: this host's address, loopback for a file store. */
  interface?: string;
}

export function availableBackends(): Backend[] {
  return native.distBackends() as Backend[];
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: Backend;
  readonly timeoutMs: number;
  private id: number | null;

  constructor(o: ProcessGroupOptions) {
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.backend = o.backend ?? 'gloo';
    this.timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const iface = o.interface ?? process.env.GLOO_SOCKET_IFNAME;
    // Ranks that meet through a file are on one machine: loopback needs no hostname resolution.
    const device = o.store.kind === 'file' || (o.store.kind === 'tcp' && isLoopback(o.store.host)) ? '127.0.0.1' : '';
    this.id = native.distInit({
      backend: this.backend,
      store: o.store.kind,
      path: o.store.kind === 'file' ? o.store.path : undefined,
      host: o.store.kind === 'tcp' ? o.store.host : undefined,
      port: o.store.kind === 'tcp' ? o.store.port : undefined,
      rank: o.rank,
      worldSize: o.worldSize,
      timeoutMs: this.timeoutMs,
      connectTimeoutMs: o.connectTimeoutMs ?? Math.max(this.timeoutMs, CONNECT_TIMEOUT_MS),
      interface: iface,
      device,
    });
  }

  private group(): number {
    if (this.id === null) throw new Error('process group was destroyed');
    return this.id;
  }

  allReduce(tensors: Tensor | readonly Tensor[], op: ReduceOp = 'sum'): void {
    native.distAllReduce(this.group(), handles(tensors), op);
  }

  /** In-place all-reduce of many tensors packed into flat buckets of ~bucketBytes (DDP's gradient reduction). */
  allReduceBuckets(tensors: readonly Tensor[], op: 'sum' | 'avg' = 'avg', bucketBytes = DDP_BUCKET_BYTES): void {
    if (tensors.length === 0) return;
    native.distAllReduceBuckets(this.group(), handles(tensors), op, bucketBytes);
  }

  broadcast(tensors: Tensor | readonly Tensor[], root = 0): void {
    native.distBroadcast(this.group(), handles(tensors), root);
  }

  barrier(): void {
    native.distBarrier(this.group());
  }

  /** Releases the group; only after its collectives succeeded (a failed one leaves a worker blocked). */
  destroy(): void {
    if (this.id === null) return;
    native.distDestroy(this.id);
    this.id = null;
  }
}

function handles(tensors: Tensor | readonly Tensor[]): NativeHandle[] {
  const list = Array.isArray(tensors) ? (tensors as readonly Tensor[]) : [tensors as Tensor];
  return list.map((t) => t.handle);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

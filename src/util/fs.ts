/**
 * Small synchronous filesystem helpers.
 *
 * `writeFileAtomic` gives readers of `path` either the complete old content or
 * the complete new content, never a torn write: the data goes to a temporary
 * file in the same directory (same filesystem, so the rename is atomic on
 * POSIX), is fsync'ed, and is then renamed over the target. The directory is
 * fsync'ed afterwards (best effort) so the rename itself survives a crash.
 *
 * `fs` is imported as the module object (default import) and its functions are
 * looked up at call time, so tests can inject faults with
 * `mock.method(fs, 'fsyncSync', ...)`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

const faultCounts = new Map<string, number>();

/**
 * Fault-injection hook for the crash tests (test/faults.test.ts, bench faults): with
 * DFKD_FAULT_PAUSE=<phase>[@n] the process stops at the n-th time (default 1st) it reaches `phase`,
 * writes DFKD_FAULT_MARKER (JSON: phase, pid) and sleeps until it is killed (with DFKD_FAULT_RANK=r,
 * only the data-parallel rank r does). Without the variable it
 * costs one environment lookup.
 */
export function faultPoint(phase: string): void {
  const want = process.env.DFKD_FAULT_PAUSE;
  if (!want) return;
  const [name, nth] = want.split('@');
  if (name !== phase) return;
  // DFKD_FAULT_RANK=r: only data-parallel rank r stops (test/ddp.test.ts kills one rank of several).
  const onlyRank = process.env.DFKD_FAULT_RANK;
  if (onlyRank !== undefined && (process.env.RANK ?? '0') !== onlyRank) return;
  const count = (faultCounts.get(phase) ?? 0) + 1;
  faultCounts.set(phase, count);
  if (count !== Number(nth ?? 1)) return;
  const marker = process.env.DFKD_FAULT_MARKER;
  if (marker) fs.writeFileSync(marker, JSON.stringify({ phase, count, pid: process.pid }));
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0, 1000); // until killed
}

/** What atomicTempName makes: `.<name>.<pid>.<12 hex>.tmp`, the writer's pid captured. */
export const ATOMIC_TEMP = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** Name of the temporary sibling used while writing `target`. Exposed for tests/diagnostics. */
export function atomicTempName(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** How writeFileAtomic treats a missing parent folder. */
export interface AtomicWriteOptions {
  /**
   * Create missing parent folders (the default). false: a missing folder is an ENOENT error and nothing
   * is created — for a writer whose folder may be removed under it (the detection generator process,
   * whose feed folder a resumed run clears): recreating it would leave it behind.
   */
  makeParents?: boolean;
}

/**
 * Atomically replace `target` with `data` (a string is written as UTF-8).
 * Parent directories are created unless `opts.makeParents` is false. On any failure the temporary file
 * is removed and the error is rethrown; `target` is left as it was.
 * The new file gets the default mode (0o666 & ~umask), not the old file's mode.
 */
export function writeFileAtomic(target: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const dir = path.dirname(target);
  if (opts.makeParents !== false) fs.mkdirSync(dir, { recursive: true });

  const tmp = atomicTempName(target);
  let fd: number | undefined;
  let created = false;
  try {
    fd = fs.openSync(tmp, 'wx');
    created = true;
    let off = 0;
    while (off < bytes.length) {
      off += fs.writeSync(fd, bytes, off, bytes.length - off);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    faultPoint('atomic-tmp-written');
    fs.renameSync(tmp, target);
    created = false; // the temp name no longer exists
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing; keep the original error */
      }
    }
    if (created) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        /* best effort */
      }
    }
    throw err;
  }
  fsyncDir(dir);
}

/** Atomically write `value` as pretty-printed JSON (2-space indent) with a trailing newline. */
export function writeJsonAtomic(target: string, value: unknown): void {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) {
    throw new TypeError(`writeJsonAtomic(${target}): value is not JSON-serialisable`);
  }
  writeFileAtomic(target, text + '\n');
}

/** Best-effort directory fsync (not supported on every platform, e.g. Windows). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* ignore: durability of the rename is best effort */
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* ignore */
      }
    }
  }
}

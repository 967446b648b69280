/**
 * Hugging Face safetensors, in pure TypeScript (no dependencies).
 *
 * File layout (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes]  N, unsigned 64-bit little-endian: byte length of the header
 *   [N bytes]  UTF-8 JSON object:
 *                { "<name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] },
 *                  ...,
 *                  "__metadata__": { "<key>": "<string value>" } }      (optional)
 *   [rest]     the data buffer; tensor bytes are little-endian, C (row-major) order;
 *              data_offsets are relative to the start of this buffer.
 *
 * Writer (`encodeSafetensors`), matching the reference Rust implementation so the
 * output is byte-identical to `safetensors.serialize` for the same input:
 *  - compact JSON; `__metadata__` first (omitted when there is no metadata), then
 *    each tensor as {"dtype","shape","data_offsets"} in layout order;
 *  - the header is padded with spaces (0x20) to a multiple of 8 bytes, so the data
 *    buffer starts 8-byte aligned in the file;
 *  - layout order: by dtype descending in the reference's alignment order
 *    (I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL), then by name (UTF-8 byte order).
 *    Every tensor therefore starts at an offset that is a multiple of its element size.
 *
 * Reader (`decodeSafetensors`) validates everything the reference validates, and a
 * little more (see `SafetensorsError` messages): header size limits, UTF-8, JSON,
 * a leading '{', known dtypes, shapes, offsets, byte sizes, a contiguous layout with
 * no overlaps and no gaps that covers the data buffer exactly, string metadata.
 * Unknown extra fields inside a tensor entry are ignored (as the reference does).
 * Duplicate JSON keys are not detected (JSON.parse keeps the last; a discarded
 * entry usually leaves a gap that is then reported).
 *
 * Returned tensor `data` is a `Uint8Array` *view* into the input bytes (no copy) when
 * its absolute byte offset is a multiple of the dtype's element size; otherwise it is
 * copied into a fresh buffer. Either way `data.byteOffset % SAFE_DTYPE_BYTES[dtype] === 0`,
 * so `new Float32Array(data.buffer, data.byteOffset, numel)` is always legal. Views alias
 * the input: mutate or reuse the input buffer and the tensors change with it.
 * (`readSafetensorsFile` owns its buffer, so its views are safe.)
 *
 * Endianness: the file format is little-endian. The byte-level codec here is
 * host-independent, but the typed-array helpers (`f16ToF32` etc. applied to views of
 * `data`, `toFloat32Array`, `fromFloat32Array`) assume a little-endian host, which is
 * every platform Node supports in practice (x86-64, arm64). Big-endian hosts are out
 * of scope; the helpers throw on them rather than silently byte-swapping wrongly.
 *
 * Size limits: whole-file reads go through one Buffer, so files must fit in memory
 * (fine for ViT checkpoints); offsets must be below 2^53.
 */
import fs from 'node:fs';
import { writeFileAtomic, type AtomicWriteOptions } from '../util/fs.js';

export type SafeDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const SAFE_DTYPE_BYTES: Record<SafeDType, number> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
});

/**
 * Position of each dtype in the reference implementation's `Dtype` enum, which is
 * "in increasing alignment order"; the writer sorts by this, descending.
 */
const DTYPE_RANK: Record<SafeDType, number> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  I16: 5,
  F16: 7,
  BF16: 8,
  I32: 9,
  F32: 11,
  F64: 12,
  I64: 13,
};

const SUPPORTED = Object.keys(SAFE_DTYPE_BYTES) as SafeDType[];

/** Header byte limit used by the reference implementation (100 MB, decimal). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface RawTensor {
  dtype: SafeDType;
  shape: number[];
  /** little-endian element bytes, row-major; length = numel * SAFE_DTYPE_BYTES[dtype] */
  data: Uint8Array;
}

export interface SafetensorsHeaderEntry {
  dtype: SafeDType;
  shape: number[];
  /** [begin, end) relative to the start of the data buffer */
  offsets: [number, number];
}

export class SafetensorsError extends Error {
  file?: string;
  tensor?: string;
  constructor(message: string, file?: string, tensor?: string) {
    super(message);
    this.name = 'SafetensorsError';
    if (file !== undefined) this.file = file;
    if (tensor !== undefined) this.tensor = tensor;
  }
}

const BUFFER_LABEL = '<buffer>';

function fail(file: string | undefined, tensor: string | undefined, problem: string): never {
  const where = file ?? BUFFER_LABEL;
  const what = tensor !== undefined ? `tensor ${JSON.stringify(tensor)}: ` : '';
  throw new SafetensorsError(`safetensors ${where}: ${what}${problem}`, file, tensor);
}

function isDType(x: unknown): x is SafeDType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(SAFE_DTYPE_BYTES, x);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return 'an object';
  return `${typeof x} ${truncate(JSON.stringify(x) ?? String(x), 40)}`;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n) + '…';
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Own-property assignment that is safe for keys like "__proto__". */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function shapeStr(shape: readonly unknown[]): string {
  return `[${shape.join(',')}]`;
}

/** numel of a validated shape, or an error string. */
function numelOf(shape: number[]): number | string {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return `shape ${shapeStr(shape)} has too many elements (overflows 2^53)`;
  }
  return n;
}

/** Returns an error string, or undefined if `shape` is an array of non-negative safe integers. */
function checkShape(shape: unknown): string | undefined {
  if (!Array.isArray(shape)) return `shape must be an array of non-negative integers, got ${describe(shape)}`;
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      return `shape must be an array of non-negative integers, but shape[${i}] is ${describe(d)}`;
    }
  }
  return undefined;
}

function unknownDtypeMessage(d: unknown): string {
  return `unknown dtype ${typeof d === 'string' ? JSON.stringify(d) : describe(d)}; supported dtypes: ${SUPPORTED.join(', ')}`;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

function encodeInternal(
  tensors: Record<string, RawTensor>,
  metadata: Record<string, string> | undefined,
  file: string | undefined,
): Uint8Array {
  if (!isPlainObject(tensors)) fail(file, undefined, `tensors must be an object mapping names to tensors, got ${describe(tensors)}`);
  const items: { name: string; t: RawTensor; nbytes: number }[] = [];
  for (const name of Object.keys(tensors)) {
    const t = tensors[name] as unknown;
    if (name === '__metadata__') fail(file, name, 'the name "__metadata__" is reserved for file metadata');
    if (LONE_SURROGATE.test(name)) fail(file, name, 'name is not well-formed Unicode (lone surrogate)');
    if (!isPlainObject(t)) fail(file, name, `expected a {dtype, shape, data} object, got ${describe(t)}`);
    if (!isDType(t.dtype)) fail(file, name, unknownDtypeMessage(t.dtype));
    const shapeErr = checkShape(t.shape);
    if (shapeErr) fail(file, name, shapeErr);
    const shape = t.shape as number[];
    const numel = numelOf(shape);
    if (typeof numel === 'string') fail(file, name, numel);
    if (!(t.data instanceof Uint8Array)) fail(file, name, `data must be a Uint8Array of little-endian bytes, got ${describe(t.data)}`);
    const nbytes = numel * SAFE_DTYPE_BYTES[t.dtype];
    if (!Number.isSafeInteger(nbytes)) fail(file, name, `shape ${shapeStr(shape)} ${t.dtype} is too large`);
    if (t.data.length !== nbytes) {
      fail(file, name, `data has ${t.data.length} bytes but shape ${shapeStr(shape)} ${t.dtype} needs ${numel} × ${SAFE_DTYPE_BYTES[t.dtype]} = ${nbytes} bytes`);
    }
    items.push({ name, t: t as unknown as RawTensor, nbytes });
  }
  items.sort((a, b) => DTYPE_RANK[b.t.dtype] - DTYPE_RANK[a.t.dtype] || compareUtf8(a.name, b.name));

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) fail(file, undefined, `metadata must be an object of strings, got ${describe(metadata)}`);
    const keys = Object.keys(metadata);
    const kv: string[] = [];
    for (const k of keys) {
      const v: unknown = metadata[k];
      if (typeof v !== 'string') fail(file, undefined, `metadata value for key ${JSON.stringify(k)} must be a string, got ${describe(v)}`);
      if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) fail(file, undefined, `metadata entry ${JSON.stringify(k)} is not well-formed Unicode`);
      kv.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    if (keys.length > 0) parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  let offset = 0;
  for (const { name, t, nbytes } of items) {
    const end = offset + nbytes;
    if (!Number.isSafeInteger(end)) fail(file, name, 'total data size exceeds 2^53 bytes');
    parts.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = utf8Encoder.encode(`{${parts.join(',')}}`);
  const headerLen = json.length + ((8 - (json.length % 8)) % 8);
  if (headerLen > MAX_HEADER_BYTES) fail(file, undefined, `header would be ${headerLen} bytes, over the ${MAX_HEADER_BYTES}-byte limit readers enforce`);

  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const { t } of items) {
    out.set(t.data, pos);
    pos += t.data.length;
  }
  return out;
}

/**
 * Serialise tensors (+ optional string metadata) to safetensors bytes.
 * Layout and header bytes match the reference implementation (see module doc).
 * Empty `metadata` ({}) is omitted from the header, like `None` in the reference.
 */
export function encodeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  return encodeInternal(tensors, metadata, undefined);
}

/** Encode and write atomically (temp file + fsync + rename); errors name `path`. */
export function writeSafetensorsFile(path: string, tensors: Record<string, RawTensor>, metadata?: Record<string, string>, opts?: AtomicWriteOptions): void {
  writeFileAtomic(path, encodeInternal(tensors, metadata, path), opts);
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

interface ParsedHeader {
  /** in data-offset order */
  entries: { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }[];
  metadata: Record<string, string>;
}

/** Validates the 8-byte prefix against the total size; returns N. */
function checkPrefix(prefix: Uint8Array, totalLen: number, file: string | undefined): number {
  if (totalLen < 8) {
    fail(file, undefined, `file is ${totalLen} bytes, shorter than the 8-byte header-length prefix (empty or not a safetensors file)`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(file, undefined, `header length ${n} bytes is absurd (limit ${MAX_HEADER_BYTES}); corrupt file or not a safetensors file`);
  }
  const nn = Number(n);
  if (nn > totalLen - 8) {
    fail(file, undefined, `header length ${nn} bytes is larger than the file allows (${totalLen} bytes total, ${totalLen - 8} after the prefix); file truncated or corrupt`);
  }
  return nn;
}

function parseHeader(headerBytes: Uint8Array, dataLen: number, file: string | undefined): ParsedHeader {
  let text: string;
  try {
    text = utf8Decoder.decode(headerBytes);
  } catch {
    fail(file, undefined, `header (${headerBytes.length} bytes) is not valid UTF-8`);
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    fail(file, undefined, `header is not valid JSON (${(e as Error).message}); header starts ${JSON.stringify(truncate(text, 60))}`);
  }
  if (!isPlainObject(root)) fail(file, undefined, `header must be a JSON object, got ${describe(root)}`);
  if (!text.startsWith('{')) fail(file, undefined, `header must start with '{' (found ${JSON.stringify(text.slice(0, 1))}); leading whitespace is not allowed`);

  const metadata: Record<string, string> = {};
  const entries: ParsedHeader['entries'] = [];
  for (const name of Object.keys(root)) {
    const v = root[name];
    if (name === '__metadata__') {
      if (v === null) continue;
      if (!isPlainObject(v)) fail(file, undefined, `__metadata__ must be an object of strings, got ${describe(v)}`);
      for (const k of Object.keys(v)) {
        const s = v[k];
        if (typeof s !== 'string') fail(file, undefined, `__metadata__ value for key ${JSON.stringify(k)} must be a string, got ${describe(s)}`);
        if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(s)) fail(file, undefined, `__metadata__ entry ${JSON.stringify(k)} is not well-formed Unicode`);
        setOwn(metadata, k, s);
      }
      continue;
    }
    if (LONE_SURROGATE.test(name)) fail(file, name, 'name is not well-formed Unicode (lone surrogate)');
    if (!isPlainObject(v)) fail(file, name, `entry must be an object with dtype, shape, data_offsets; got ${describe(v)}`);
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      if (!Object.prototype.hasOwnProperty.call(v, field)) fail(file, name, `entry is missing "${field}"`);
    }
    if (!isDType(v.dtype)) fail(file, name, unknownDtypeMessage(v.dtype));
    const dtype = v.dtype;
    const shapeErr = checkShape(v.shape);
    if (shapeErr) fail(file, name, shapeErr);
    const shape = (v.shape as number[]).slice();
    const offs = v.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o: unknown) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(file, name, `data_offsets must be two non-negative integers [begin, end], got ${truncate(JSON.stringify(offs) ?? String(offs), 60)}`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) fail(file, name, `data_offsets [${begin},${end}] has begin > end`);
    const numel = numelOf(shape);
    if (typeof numel === 'string') fail(file, name, numel);
    const nbytes = numel * SAFE_DTYPE_BYTES[dtype];
    if (end - begin !== nbytes) {
      fail(file, name, `header says shape ${shapeStr(shape)} ${dtype} = ${nbytes} bytes but offsets [${begin},${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype, shape, begin, end });
  }

  // Truncation: report the furthest-reaching tensor with expected vs present sizes.
  let far: (typeof entries)[number] | undefined;
  for (const e of entries) if (far === undefined || e.end > far.end) far = e;
  if (far !== undefined && far.end > dataLen) {
    const headerEnd = 8 + headerBytes.length;
    fail(
      file,
      far.name,
      `data_offsets [${far.begin},${far.end}] end beyond the data buffer: file truncated? ` +
        `expected ${far.end} data bytes (file size ${headerEnd + far.end}), only ${dataLen} present (file size ${headerEnd + dataLen})`,
    );
  }

  // Layout: contiguous, no overlaps, no gaps, covering the whole buffer (as the reference requires).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: (typeof entries)[number] | undefined;
  for (const e of entries) {
    if (e.begin < pos) {
      fail(file, e.name, `data_offsets [${e.begin},${e.end}] overlap tensor ${JSON.stringify(prev?.name)} at [${prev?.begin},${prev?.end}]`);
    }
    if (e.begin > pos) {
      fail(file, e.name, `data buffer not fully covered: bytes [${pos},${e.begin}) before this tensor belong to no tensor`);
    }
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLen) {
    fail(file, undefined, `data buffer not fully covered: tensors end at byte ${pos} but the data buffer has ${dataLen} bytes (${dataLen - pos} trailing bytes belong to no tensor)`);
  }
  return { entries, metadata };
}

/**
 * Parse and validate safetensors bytes. `file` is only used in error messages.
 * Tensors are returned in data-offset order. See the module doc for view/copy semantics.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  file?: string,
): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  if (!(bytes instanceof Uint8Array)) fail(file, undefined, `expected a Uint8Array, got ${describe(bytes)}`);
  const n = checkPrefix(bytes, bytes.length, file);
  const dataStart = 8 + n;
  const { entries, metadata } = parseHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, file);
  const tensors: Record<string, RawTensor> = {};
  for (const e of entries) {
    const abs = bytes.byteOffset + dataStart + e.begin;
    const len = e.end - e.begin;
    let data: Uint8Array;
    if (abs % SAFE_DTYPE_BYTES[e.dtype] === 0) {
      data = new Uint8Array(bytes.buffer, abs, len);
    } else {
      data = new Uint8Array(len);
      data.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    }
    setOwn(tensors, e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Read and decode a whole file; errors name `path`. */
export function readSafetensorsFile(path: string): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  const buf = fs.readFileSync(path);
  return decodeSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), path);
}

/**
 * Read only the 8-byte prefix and the header (not the tensor data) and validate it
 * against the file size: same checks as `decodeSafetensors`.
 */
export function readSafetensorsHeader(path: string): {
  entries: Record<string, SafetensorsHeaderEntry>;
  metadata: Record<string, string>;
} {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const prefix = new Uint8Array(8);
    if (size >= 8) readExactly(fd, prefix, 0, path); // checkPrefix reports short files
    const n = checkPrefix(prefix, size, path);
    const header = new Uint8Array(n);
    readExactly(fd, header, 8, path);
    const { entries, metadata } = parseHeader(header, size - 8 - n, path);
    const out: Record<string, SafetensorsHeaderEntry> = {};
    for (const e of entries) setOwn(out, e.name, { dtype: e.dtype, shape: e.shape, offsets: [e.begin, e.end] });
    return { entries: out, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

function readExactly(fd: number, into: Uint8Array, position: number, file: string): void {
  let got = 0;
  while (got < into.length) {
    const r = fs.readSync(fd, into, got, into.length - got, position + got);
    if (r === 0) fail(file, undefined, `unexpected end of file at byte ${position + got} (file changed while reading?)`);
    got += r;
  }
}

// ---------------------------------------------------------------------------
// Numeric conversions (bit-exact, round-to-nearest-even)
// ---------------------------------------------------------------------------

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLE(what: string): void {
  if (!HOST_LE) throw new SafetensorsError(`safetensors: ${what} assumes a little-endian host; big-endian hosts are not supported`);
}

/** IEEE binary16 bit patterns -> float32. Exact (every f16 is representable); NaN payloads kept. */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const o32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      if (mant === 0) {
        o32[i] = sign >>> 0;
      } else {
        // subnormal: mant * 2^-24, exact in float32
        out[i] = (sign ? -mant : mant) * 5.9604644775390625e-8;
      }
    } else if (exp === 0x1f) {
      o32[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else {
      o32[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return out;
}

/**
 * float32 -> IEEE binary16 bit patterns, round-to-nearest-even. Overflow -> ±inf
 * (anything ≥ 65520 in magnitude), underflow -> subnormals / ±0, signs of zeros kept.
 * NaN stays NaN and is quieted (quiet bit set, sign and top 9 payload bits kept), as
 * F16C hardware and the Rust `half` crate do; so f16 -> f32 -> f16 is the identity for
 * every pattern except signalling NaNs, which come back quiet.
 */
export function f32ToF16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const x32 = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const f = x32[i]!;
    const sign = (f >>> 16) & 0x8000;
    const exp = (f >>> 23) & 0xff;
    const mant = f & 0x7fffff;
    if (exp === 0xff) {
      out[i] = mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
      continue;
    }
    const e = exp - 112; // rebias 127 -> 15
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // |x| < 2^-25: rounds to zero (2^-25 itself is the tie, handled below)
        continue;
      }
      const m = mant | 0x800000; // f32 zero/subnormals land in e < -10, so the implicit bit is right
      const shift = 14 - e; // 14..24
      let h = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && (h & 1) === 1)) h++;
      out[i] = sign | h; // h may carry into 0x400 = smallest normal, which is correct
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // carry may reach 0x7c00 = inf, correct
    out[i] = sign | h;
  }
  return out;
}

/** bfloat16 bit patterns -> float32 (exact: bf16 is the top half of a float32). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const o32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) o32[i] = (bits[i]! << 16) >>> 0;
  return out;
}

/**
 * float32 -> bfloat16 bit patterns, round-to-nearest-even; overflow -> ±inf.
 * NaN stays NaN and is quieted (quiet bit 0x0040 set, sign and top payload bits kept)
 * so that a payload living only in the low 16 bits cannot turn into inf.
 */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const x32 = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const f = x32[i]!;
    if ((f & 0x7f800000) === 0x7f800000 && (f & 0x7fffff) !== 0) {
      out[i] = (f >>> 16) | 0x0040;
    } else {
      out[i] = (f + 0x7fff + ((f >>> 16) & 1)) >>> 16; // f ≤ 0xff800000 here, no 2^32 wrap
    }
  }
  return out;
}

/** Copy `data` into a fresh, aligned buffer if it is not aligned for `elemBytes`. */
function aligned(data: Uint8Array, elemBytes: number): Uint8Array {
  if (data.byteOffset % elemBytes === 0) return data;
  return data.slice();
}

/**
 * Convenience for loaders: a tensor of a floating dtype (F64/F32/F16/BF16) as a fresh
 * Float32Array (F64 is rounded to nearest float32). Little-endian hosts only.
 */
export function toFloat32Array(t: RawTensor, name?: string): Float32Array {
  requireLE('toFloat32Array');
  const size = SAFE_DTYPE_BYTES[t.dtype];
  if (t.data.length % size !== 0) fail(undefined, name, `${t.dtype} data length ${t.data.length} is not a multiple of ${size}`);
  const d = aligned(t.data, size);
  const n = d.length / size;
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(d.buffer, d.byteOffset, n).slice();
    case 'F64':
      return Float32Array.from(new Float64Array(d.buffer, d.byteOffset, n));
    case 'F16':
      return f16ToF32(new Uint16Array(d.buffer, d.byteOffset, n));
    case 'BF16':
      return bf16ToF32(new Uint16Array(d.buffer, d.byteOffset, n));
    default:
      fail(undefined, name, `cannot convert dtype ${t.dtype} to float32 (only F64, F32, F16, BF16)`);
  }
}

/** Convenience for writers: float32 values -> RawTensor of dtype F32 (copied), F16 or BF16 (rounded to nearest even). */
export function fromFloat32Array(x: Float32Array, shape: number[], dtype: 'F32' | 'F16' | 'BF16' = 'F32'): RawTensor {
  requireLE('fromFloat32Array');
  const shapeErr = checkShape(shape);
  if (shapeErr) fail(undefined, undefined, shapeErr);
  const numel = numelOf(shape);
  if (numel !== x.length) fail(undefined, undefined, `shape ${shapeStr(shape)} has ${numel} elements but ${x.length} values were given`);
  let bytes: Uint8Array;
  if (dtype === 'F32') bytes = new Uint8Array(x.slice().buffer);
  else if (dtype === 'F16') bytes = new Uint8Array(f32ToF16(x).buffer);
  else bytes = new Uint8Array(f32ToBf16(x).buffer);
  return { dtype, shape: shape.slice(), data: bytes };
}

// The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS").
//
//   bytes 0–1  zero
//   byte  2    element type: 0x08 = unsigned byte (the only type this parser accepts)
//   byte  3    number of dimensions d
//   then d big-endian uint32 sizes, then the payload: prod(sizes) elements, row-major.
//
// So the magic number is 0x00000803 for a [N, rows, cols] image file and 0x00000801 for an [N] label
// file. Files may be gzip-compressed (as shipped: *.gz); the gzip magic 1f 8b is detected, not the
// file name. Every malformed case is an Error naming the file.
import fs from 'node:fs';
import { gunzipSync } from 'node:zlib';

export interface IdxData {
  /** The sizes from the header, e.g. [60000, 28, 28]. */
  dims: number[];
  /** The payload, row-major, exactly prod(dims) bytes (a view; copy it before mutating). */
  data: Uint8Array;
}

export interface IdxExpect {
  /** Required number of dimensions (3 for images, 1 for labels). */
  ndims?: number;
}

/** True if the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses IDX bytes (gzip-compressed or plain). `name` is used in error messages (the file path).
 * The payload must be exactly prod(dims) bytes: a shorter one is a truncated file, a longer one has
 * trailing garbage; both are errors.
 */
export function parseIdx(input: Uint8Array, name = '<buffer>', expect: IdxExpect = {}): IdxData {
  let bytes = input;
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new Error(`IDX ${name}: corrupt gzip stream (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4) throw new Error(`IDX ${name}: ${bytes.length} bytes, too short for the 4-byte magic number`);
  const magic = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const magicHex = `0x${magic.toString(16).padStart(8, '0')}`;
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(`IDX ${name}: bad magic number ${magicHex} (expected 0x000008NN: 0x00000803 images, 0x00000801 labels); not an IDX file`);
  }
  const dtype = bytes[2]!;
  if (dtype !== 0x08) {
    throw new Error(`IDX ${name}: element type byte 0x${dtype.toString(16).padStart(2, '0')} (magic ${magicHex}) is not supported; only 0x08 (unsigned byte) is`);
  }
  const ndims = bytes[3]!;
  if (ndims < 1) throw new Error(`IDX ${name}: magic ${magicHex} declares 0 dimensions`);
  if (expect.ndims !== undefined && ndims !== expect.ndims) {
    throw new Error(`IDX ${name}: ${ndims} dimensions (magic ${magicHex}) but ${expect.ndims} expected (magic 0x000008${expect.ndims.toString(16).padStart(2, '0')})`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new Error(`IDX ${name}: truncated header: ${ndims} dimensions need ${headerBytes} header bytes, the file has ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let expected = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    expected *= d;
  }
  const actual = bytes.length - headerBytes;
  if (actual !== expected) {
    const what = actual < expected ? 'truncated payload' : 'payload longer than the header says';
    throw new Error(`IDX ${name}: ${what}: dims [${dims.join(', ')}] need ${expected} bytes after the ${headerBytes}-byte header, found ${actual}`);
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, expected) };
}

/** Reads and parses an IDX file (gzip or plain). */
export function readIdxFile(file: string, expect: IdxExpect = {}): IdxData {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`IDX ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseIdx(bytes, file, expect);
}

/** Encodes an unsigned-byte IDX file (plain; gzip it with zlib.gzipSync if wanted). For fixtures and exports. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`encodeIdx: dims [${dims.join(', ')}] need ${n} bytes, got ${data.length}`);
  const out = new Uint8Array(4 + 4 * dims.length + n);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

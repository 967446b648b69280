import { test, describe, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  SAFE_DTYPE_BYTES,
  SafetensorsError,
  bf16ToF32,
  decodeSafetensors,
  encodeSafetensors,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  fromFloat32Array,
  readSafetensorsFile,
  readSafetensorsHeader,
  toFloat32Array,
  writeSafetensorsFile,
  type RawTensor,
  type SafeDType,
} from '../src/export/safetensors.js';
import { atomicTempName, writeFileAtomic, writeJsonAtomic } from '../src/util/fs.js';

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-test-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));
let dirCounter = 0;
function freshDir(): string {
  const d = path.join(TMP, `case${dirCounter++}`);
  fs.mkdirSync(d);
  return d;
}

const ALL_DTYPES: SafeDType[] = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(n: number, r: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** u64 little-endian, written byte by byte (independent of the library's DataView code). */
function u64le(n: number): number[] {
  const out: number[] = [];
  let v = n;
  for (let i = 0; i < 8; i++) {
    out.push(v % 256);
    v = Math.floor(v / 256);
  }
  return out;
}

/** Assemble a file by hand from the spec: u64le(len(header)) + header bytes + data bytes. */
function handFile(header: string | number[], data: number[] | Uint8Array = []): Uint8Array {
  const h = typeof header === 'string' ? Array.from(Buffer.from(header, 'utf8')) : header;
  return Uint8Array.from([...u64le(h.length), ...h, ...Array.from(data)]);
}

function ascii(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}

function headerLen(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
}

function bits32(x: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x);
  return dv.getUint32(0);
}

function floatOfBits(b: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, b >>> 0);
  return dv.getFloat32(0);
}

const LABEL = 'bad-model.safetensors';

/** Assert that fn throws a SafetensorsError naming the file (and tensor), whose message contains all `parts`. */
function expectSafetensorsError(
  fn: () => unknown,
  parts: (string | RegExp)[],
  opts: { tensor?: string; file?: string } = {},
): SafetensorsError {
  const file = opts.file ?? LABEL;
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected a SafetensorsError mentioning ${parts.join(' / ')}, but nothing was thrown`);
  assert.ok(caught instanceof SafetensorsError, `expected SafetensorsError, got ${String(caught)}`);
  const msg = caught.message;
  assert.ok(msg.includes(file), `message should name the file ${file}: ${msg}`);
  assert.equal(caught.file, file === '<buffer>' ? undefined : file);
  for (const p of parts) {
    if (typeof p === 'string') assert.ok(msg.includes(p), `message should contain ${JSON.stringify(p)}: ${msg}`);
    else assert.match(msg, p);
  }
  if (opts.tensor !== undefined) {
    assert.equal(caught.tensor, opts.tensor, `error.tensor should be ${opts.tensor}: ${msg}`);
    assert.ok(msg.includes(JSON.stringify(opts.tensor)), `message should name tensor ${opts.tensor}: ${msg}`);
  }
  return caught;
}

// ---------------------------------------------------------------------------
// format: writer output vs hand-assembled bytes, and hand-built files
// ---------------------------------------------------------------------------

describe('format against hand-assembled bytes', () => {
  test('writer emits exactly the spec bytes for one F32 tensor (header 64 bytes, no padding needed)', () => {
    const values = new Float32Array([0, 1, 2, 3, 4, 5]);
    const out = encodeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: new Uint8Array(values.buffer) } });
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    assert.equal(header.length, 64);
    // 0.0, 1.0 = 0x3F800000, 2.0 = 0x40000000, 3.0 = 0x40400000, 4.0 = 0x40800000, 5.0 = 0x40A00000 (LE)
    const data = [0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40];
    assert.deepEqual(Array.from(out), [64, 0, 0, 0, 0, 0, 0, 0, ...ascii(header), ...data]);
  });

  test('writer pads the header with spaces to a multiple of 8', () => {
    const out = encodeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: new Uint8Array(24) } });
    const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}'; // 65 bytes -> pad 7
    assert.equal(header.length, 65);
    assert.deepEqual(Array.from(out), [72, 0, 0, 0, 0, 0, 0, 0, ...ascii(header), ...ascii('       '), ...new Array(24).fill(0)]);
  });

  test('empty file is "{}" + 6 spaces; metadata is written first as __metadata__', () => {
    assert.deepEqual(Array.from(encodeSafetensors({})), [8, 0, 0, 0, 0, 0, 0, 0, ...ascii('{}      ')]);
    const meta = '{"__metadata__":{"framework":"pt"}}'; // 35 bytes -> pad 5
    assert.deepEqual(Array.from(encodeSafetensors({}, { framework: 'pt' })), [40, 0, 0, 0, 0, 0, 0, 0, ...ascii(meta), ...ascii('     ')]);
    // empty metadata object is omitted, like None in the reference
    assert.deepEqual(encodeSafetensors({}, {}), encodeSafetensors({}));
  });

  test('a hand-built file (unsorted JSON order, extra whitespace, F32/F16/I64 + metadata) decodes to the right values', () => {
    // data buffer layout chosen by hand: [0,8) I64 "step", [8,16) F32 "w", [16,20) F16 "h"
    const header =
      '{"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},\n' +
      ' "__metadata__": {"format": "pt", "note": "h\\u00e9llo"},\n' +
      ' "h": {"dtype": "F16", "shape": [2], "data_offsets": [16, 20]},\n' +
      ' "step": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]}}   ';
    const data = [
      // I64 -2 = 0xFFFFFFFFFFFFFFFE
      0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      // F32 1.5 = 0x3FC00000, -2.0 = 0xC0000000
      0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0,
      // F16 1.0 = 0x3C00, -0.5 = 0xB800
      0x00, 0x3c, 0x00, 0xb8,
    ];
    const { tensors, metadata } = decodeSafetensors(handFile(header, data), 'hand.safetensors');
    assert.deepEqual(metadata, { format: 'pt', note: 'héllo' });
    assert.deepEqual(Object.keys(tensors), ['step', 'w', 'h'], 'tensors come back in data-offset order');
    assert.deepEqual(tensors.w!.shape, [2]);
    assert.deepEqual(Array.from(toFloat32Array(tensors.w!)), [1.5, -2]);
    assert.deepEqual(Array.from(toFloat32Array(tensors.h!)), [1, -0.5]);
    assert.equal(tensors.step!.dtype, 'I64');
    assert.deepEqual(tensors.step!.shape, []);
    const d = tensors.step!.data;
    assert.equal(new DataView(d.buffer, d.byteOffset, 8).getBigInt64(0, true), -2n);
  });

  test('a tensor entry with unknown extra fields is accepted (as the reference does) and the field ignored', () => {
    const bytes = handFile('{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":true}}', [7, 9]);
    const { tensors } = decodeSafetensors(bytes);
    assert.deepEqual(Object.keys(tensors.x!).sort(), ['data', 'dtype', 'shape']);
    assert.deepEqual(Array.from(tensors.x!.data), [7, 9]);
  });
});

// ---------------------------------------------------------------------------
// round trips and layout
// ---------------------------------------------------------------------------

describe('round trip', () => {
  const shapes: number[][] = [[], [0], [3, 0, 2], [5], [2, 3, 4]];

  function allDtypeTensors(seed: number): Record<string, RawTensor> {
    const r = rng(seed);
    const tensors: Record<string, RawTensor> = {};
    for (const dtype of ALL_DTYPES) {
      shapes.forEach((shape, i) => {
        tensors[`${dtype.toLowerCase()}.s${i}`] = { dtype, shape, data: randomBytes(numel(shape) * SAFE_DTYPE_BYTES[dtype], r) };
      });
    }
    return tensors;
  }

  function assertSameTensors(got: Record<string, RawTensor>, want: Record<string, RawTensor>): void {
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
    for (const [name, w] of Object.entries(want)) {
      const g = got[name]!;
      assert.equal(g.dtype, w.dtype, name);
      assert.deepEqual(g.shape, w.shape, name);
      assert.equal(Object.getPrototypeOf(g.data), Uint8Array.prototype, `${name}: data is a plain Uint8Array`);
      assert.deepEqual(Array.from(g.data), Array.from(w.data), `${name}: bytes preserved exactly`);
    }
  }

  test('every dtype, including scalars (shape []) and empty tensors, round-trips bit-exactly in memory', () => {
    const tensors = allDtypeTensors(1);
    const { tensors: back, metadata } = decodeSafetensors(encodeSafetensors(tensors));
    assertSameTensors(back, tensors);
    assert.deepEqual(metadata, {});
    // scalars hold exactly one element, empty tensors none
    assert.equal(back['f32.s0']!.data.length, 4);
    assert.equal(back['f64.s1']!.data.length, 0);
    assert.equal(back['i16.s2']!.data.length, 0);
  });

  test('float special values (NaN payloads, -0, inf, subnormals) survive bit-exactly', () => {
    const f32bits = new Uint32Array([0x7fc00001, 0xffa00000, 0x80000000, 0x7f800000, 0x00000001, 0x7f7fffff]);
    const f16bits = new Uint16Array([0x7e01, 0xfd00, 0x8000, 0x7c00, 0x0001, 0x7bff]);
    const { tensors } = decodeSafetensors(
      encodeSafetensors({
        a: { dtype: 'F32', shape: [6], data: new Uint8Array(f32bits.buffer) },
        b: { dtype: 'F16', shape: [6], data: new Uint8Array(f16bits.buffer) },
      }),
    );
    const a = tensors.a!.data;
    const b = tensors.b!.data;
    assert.deepEqual(Array.from(new Uint32Array(a.buffer, a.byteOffset, 6)), Array.from(f32bits));
    assert.deepEqual(Array.from(new Uint16Array(b.buffer, b.byteOffset, 6)), Array.from(f16bits));
  });

  test('every dtype round-trips through a file, and readSafetensorsHeader agrees with the full read', () => {
    const dir = freshDir();
    const file = path.join(dir, 'all.safetensors');
    const tensors = allDtypeTensors(2);
    writeSafetensorsFile(file, tensors, { epoch: '3' });
    const back = readSafetensorsFile(file);
    assertSameTensors(back.tensors, tensors);
    assert.deepEqual(back.metadata, { epoch: '3' });
    const hdr = readSafetensorsHeader(file);
    assert.deepEqual(hdr.metadata, { epoch: '3' });
    assert.deepEqual(Object.keys(hdr.entries), Object.keys(back.tensors), 'same (offset) order');
    let expectedBegin = 0;
    for (const [name, e] of Object.entries(hdr.entries)) {
      assert.equal(e.dtype, tensors[name]!.dtype);
      assert.deepEqual(e.shape, tensors[name]!.shape);
      assert.equal(e.offsets[0], expectedBegin, `${name} starts where the previous tensor ended`);
      assert.equal(e.offsets[1] - e.offsets[0], tensors[name]!.data.length);
      expectedBegin = e.offsets[1];
    }
    const size = fs.statSync(file).size;
    assert.equal(size, 8 + headerLen(fs.readFileSync(file)) + expectedBegin, 'header + data exactly fill the file');
    assert.deepEqual(fs.readdirSync(dir), ['all.safetensors'], 'no temp files left behind');
  });

  test('metadata round-trips: unicode, escapes, empty strings, awkward keys like "__proto__"', () => {
    const metadata: Record<string, string> = JSON.parse(
      JSON.stringify({ format: 'pt', empty: '', quote: 'a"b\\c\nd\t', unicode: 'ViT-ß 😀 日本', 'key with spaces': 'v' }),
    );
    Object.defineProperty(metadata, '__proto__', { value: 'not a prototype', enumerable: true });
    const back = decodeSafetensors(encodeSafetensors({}, metadata)).metadata;
    assert.deepEqual(back, metadata);
    assert.equal(Object.getPrototypeOf(back), Object.prototype, '__proto__ key did not change the prototype');
    assert.equal(Object.getOwnPropertyDescriptor(back, '__proto__')?.value, 'not a prototype');
  });

  test('a tensor named "__proto__" is an ordinary own key after decoding', () => {
    const tensors: Record<string, RawTensor> = {};
    Object.defineProperty(tensors, '__proto__', { value: { dtype: 'U8', shape: [1], data: new Uint8Array([42]) }, enumerable: true });
    const back = decodeSafetensors(encodeSafetensors(tensors)).tensors;
    assert.deepEqual(Object.keys(back), ['__proto__']);
    assert.deepEqual(Array.from(Object.getOwnPropertyDescriptor(back, '__proto__')!.value.data), [42]);
  });

  test('data buffer starts 8-byte aligned for every header length, padding is spaces only', () => {
    for (let len = 1; len <= 24; len++) {
      const name = 'n'.repeat(len);
      const out = encodeSafetensors({ [name]: { dtype: 'F64', shape: [1], data: new Uint8Array(8) } }, len % 2 ? { k: 'v'.repeat(len) } : undefined);
      const n = headerLen(out);
      assert.equal((8 + n) % 8, 0, `name length ${len}: data starts at ${8 + n}`);
      const headerText = Buffer.from(out.subarray(8, 8 + n)).toString('utf8');
      const trimmed = headerText.trimEnd();
      assert.ok(trimmed.endsWith('}'), 'JSON ends before the padding');
      assert.ok(/^ {0,7}$/.test(headerText.slice(trimmed.length)), 'at most 7 padding bytes, all spaces');
      assert.equal(out.length, 8 + n + 8);
    }
  });

  test('layout: dtype in descending reference alignment order, then name; every tensor starts at a multiple of its element size', () => {
    const r = rng(3);
    const tensors: Record<string, RawTensor> = {};
    // odd-length U8/BOOL/I8 tensors would misalign anything placed after them
    for (const dtype of ALL_DTYPES) {
      for (const name of ['b', 'a', 'c']) {
        const shape = [1 + Math.floor(r() * 5)];
        tensors[`${name}_${dtype}`] = { dtype, shape, data: randomBytes(shape[0]! * SAFE_DTYPE_BYTES[dtype], r) };
      }
    }
    const dir = freshDir();
    const file = path.join(dir, 'layout.safetensors');
    writeSafetensorsFile(file, tensors);
    const { entries } = readSafetensorsHeader(file);
    const order = Object.entries(entries)
      .sort((x, y) => x[1].offsets[0] - y[1].offsets[0] || x[1].offsets[1] - y[1].offsets[1])
      .map(([n]) => n);
    const dtypeOrder = ['I64', 'F64', 'F32', 'I32', 'BF16', 'F16', 'I16', 'I8', 'U8', 'BOOL'];
    const expected = dtypeOrder.flatMap((d) => ['a', 'b', 'c'].map((n) => `${n}_${d}`));
    assert.deepEqual(order, expected);
    for (const [name, e] of Object.entries(entries)) {
      assert.equal(e.offsets[0] % SAFE_DTYPE_BYTES[e.dtype], 0, `${name} aligned`);
    }
  });

  test('the writer output does not depend on the insertion order of the input', () => {
    const a = { dtype: 'F32', shape: [1], data: new Uint8Array(4).fill(1) } as RawTensor;
    const b = { dtype: 'U8', shape: [3], data: new Uint8Array(3).fill(2) } as RawTensor;
    const c = { dtype: 'F32', shape: [2], data: new Uint8Array(8).fill(3) } as RawTensor;
    assert.deepEqual(encodeSafetensors({ a, b, c }, { x: '1' }), encodeSafetensors({ c, b, a }, { x: '1' }));
  });

  test('decoded data is a zero-copy view when aligned and a copy when not; either way byteOffset is element-aligned', () => {
    const tensors = {
      d: { dtype: 'F64', shape: [2], data: new Uint8Array(new Float64Array([Math.PI, -1e300]).buffer) },
      s: { dtype: 'I16', shape: [3], data: new Uint8Array(new Int16Array([1, -2, 3]).buffer) },
    } satisfies Record<string, RawTensor>;
    const enc = encodeSafetensors(tensors);
    // aligned input: views into the input buffer
    const aligned = decodeSafetensors(enc).tensors;
    assert.equal(aligned.d!.data.buffer, enc.buffer, 'F64 data aliases the input');
    assert.equal(aligned.s!.data.buffer, enc.buffer, 'I16 data aliases the input');
    // misaligned input: place the file at byte offset 3 of a larger buffer
    for (const shift of [1, 2, 3, 4, 5]) {
      const big = new Uint8Array(enc.length + 8);
      big.set(enc, shift);
      const view = big.subarray(shift, shift + enc.length);
      const { tensors: t } = decodeSafetensors(view);
      for (const [name, raw] of Object.entries(t)) {
        assert.equal(raw.data.byteOffset % SAFE_DTYPE_BYTES[raw.dtype], 0, `${name} at shift ${shift}`);
      }
      assert.deepEqual(Array.from(new Float64Array(t.d!.data.buffer, t.d!.data.byteOffset, 2)), [Math.PI, -1e300]);
      assert.deepEqual(Array.from(new Int16Array(t.s!.data.buffer, t.s!.data.byteOffset, 3)), [1, -2, 3]);
    }
  });

  test('toFloat32Array / fromFloat32Array convert between float dtypes', () => {
    const x = new Float32Array([1, -2, 0.1, 65504, 3.140625]);
    assert.deepEqual(toFloat32Array(fromFloat32Array(x, [5], 'F32')), x);
    assert.deepEqual(Array.from(new Uint16Array(fromFloat32Array(x, [5], 'F16').data.buffer)), [0x3c00, 0xc000, 0x2e66, 0x7bff, 0x4248]);
    assert.deepEqual(Array.from(new Uint16Array(fromFloat32Array(x, [5], 'BF16').data.buffer)), [0x3f80, 0xc000, 0x3dcd, 0x4780, 0x4049]);
    const f64 = { dtype: 'F64', shape: [2], data: new Uint8Array(new Float64Array([0.5, 1 / 3]).buffer) } satisfies RawTensor;
    assert.deepEqual(Array.from(toFloat32Array(f64)), [0.5, Math.fround(1 / 3)]);
    assert.throws(() => toFloat32Array({ dtype: 'I32', shape: [1], data: new Uint8Array(4) }, 'idx'), /cannot convert dtype I32/);
    assert.throws(() => fromFloat32Array(x, [2, 2]), /has 4 elements but 5 values/);
  });
});

// ---------------------------------------------------------------------------
// corrupt input
// ---------------------------------------------------------------------------

describe('decode rejects corrupt files with specific messages', () => {
  const dec = (b: Uint8Array) => () => decodeSafetensors(b, LABEL);
  const f32 = (name: string, shape: number[], b: number, e: number) =>
    `${JSON.stringify(name)}:{"dtype":"F32","shape":${JSON.stringify(shape)},"data_offsets":[${b},${e}]}`;

  test('file shorter than 8 bytes', () => {
    expectSafetensorsError(dec(new Uint8Array(5)), ['5 bytes', 'shorter than the 8-byte']);
    expectSafetensorsError(dec(new Uint8Array(0)), ['0 bytes', 'shorter than the 8-byte']);
  });

  test('header length larger than the file', () => {
    const bytes = Uint8Array.from([...u64le(100), ...ascii('{"a":1}')]);
    expectSafetensorsError(dec(bytes), ['header length 100 bytes is larger than the file', '15 bytes total']);
  });

  test('absurd header length (> 100 MB) is rejected before anything is allocated', () => {
    expectSafetensorsError(dec(Uint8Array.from([...u64le(100_000_001), ...ascii('{}')])), ['header length 100000001 bytes is absurd', '100000000']);
    expectSafetensorsError(dec(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), ['18446744073709551615', 'absurd']);
  });

  test('header not valid UTF-8', () => {
    expectSafetensorsError(dec(handFile([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), ['not valid UTF-8']);
  });

  test('header not valid JSON', () => {
    expectSafetensorsError(dec(handFile('{"a": {')), ['not valid JSON']);
    expectSafetensorsError(dec(handFile('')), ['not valid JSON']);
  });

  test('header not a JSON object', () => {
    expectSafetensorsError(dec(handFile('[1,2]   ')), ['must be a JSON object', 'an array']);
    expectSafetensorsError(dec(handFile('null')), ['must be a JSON object', 'null']);
    expectSafetensorsError(dec(handFile('"{}"')), ['must be a JSON object', 'string']);
  });

  test("header that does not start with '{'", () => {
    expectSafetensorsError(dec(handFile('  {}')), ["must start with '{'"]);
  });

  test('tensor entry not an object / missing fields', () => {
    expectSafetensorsError(dec(handFile('{"w":5}')), ['entry must be an object', 'number 5'], { tensor: 'w' });
    expectSafetensorsError(dec(handFile('{"w":{"dtype":"F32","shape":[1]}}', [0, 0, 0, 0])), ['missing "data_offsets"'], { tensor: 'w' });
  });

  test('unknown dtype names the dtype and lists the supported ones', () => {
    const bytes = handFile('{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', [0]);
    expectSafetensorsError(dec(bytes), ['unknown dtype "F8_E4M3"', 'supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL'], { tensor: 'w' });
    expectSafetensorsError(dec(handFile('{"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0])), ['unknown dtype "f32"'], { tensor: 'w' });
    expectSafetensorsError(dec(handFile('{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0])), ['unknown dtype number 4'], { tensor: 'w' });
  });

  test('shape not an array of non-negative integers', () => {
    const mk = (shape: string) => handFile(`{"w":{"dtype":"U8","shape":${shape},"data_offsets":[0,2]}}`, [0, 0]);
    expectSafetensorsError(dec(mk('"2"')), ['shape must be an array of non-negative integers', 'string "2"'], { tensor: 'w' });
    expectSafetensorsError(dec(mk('[2,-1]')), ['shape[1] is number -1'], { tensor: 'w' });
    expectSafetensorsError(dec(mk('[1.5]')), ['shape[0] is number 1.5'], { tensor: 'w' });
    expectSafetensorsError(dec(mk('[null]')), ['shape[0] is null'], { tensor: 'w' });
  });

  test('data_offsets not two integers with begin <= end', () => {
    const mk = (offs: string) => handFile(`{"w":{"dtype":"U8","shape":[0],"data_offsets":${offs}}}`);
    expectSafetensorsError(dec(mk('[0]')), ['data_offsets must be two non-negative integers', '[0]'], { tensor: 'w' });
    expectSafetensorsError(dec(mk('["0","0"]')), ['data_offsets must be two non-negative integers'], { tensor: 'w' });
    expectSafetensorsError(dec(mk('[-1,0]')), ['data_offsets must be two non-negative integers'], { tensor: 'w' });
    expectSafetensorsError(dec(mk('{"begin":0}')), ['data_offsets must be two non-negative integers'], { tensor: 'w' });
    const b = handFile('{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}', [0, 0, 0, 0]);
    expectSafetensorsError(dec(b), ['data_offsets [4,0] has begin > end'], { tensor: 'w' });
  });

  test('truncated data: says how many bytes were expected and how many are present', () => {
    const header = `{${f32('w', [6], 0, 24)}}`;
    const bytes = handFile(header, new Uint8Array(20));
    const hl = Buffer.byteLength(header);
    expectSafetensorsError(
      dec(bytes),
      ['truncated', 'expected 24 data bytes', `file size ${8 + hl + 24}`, 'only 20 present', `file size ${8 + hl + 20}`],
      { tensor: 'w' },
    );
  });

  test('truncated real file read from disk names the path', () => {
    const dir = freshDir();
    const file = path.join(dir, 'cut.safetensors');
    writeSafetensorsFile(file, { big: { dtype: 'F32', shape: [4, 4], data: new Uint8Array(64) } });
    fs.truncateSync(file, fs.statSync(file).size - 3);
    expectSafetensorsError(() => readSafetensorsFile(file), ['truncated', 'expected 64 data bytes', 'only 61 present'], { tensor: 'big', file });
    expectSafetensorsError(() => readSafetensorsHeader(file), ['truncated', 'expected 64 data bytes', 'only 61 present'], { tensor: 'big', file });
  });

  test('byte size mismatch between shape/dtype and offsets', () => {
    const bytes = handFile(`{${f32('w', [2, 3], 0, 20)}}`, new Uint8Array(20));
    expectSafetensorsError(dec(bytes), ['header says shape [2,3] F32 = 24 bytes but offsets [0,20] span 20'], { tensor: 'w' });
  });

  test('overlapping tensor ranges name both tensors', () => {
    const bytes = handFile(`{${f32('a', [2], 0, 8)},${f32('b', [2], 4, 12)}}`, new Uint8Array(12));
    const err = expectSafetensorsError(dec(bytes), ['overlap', 'tensor "a" at [0,8]'], { tensor: 'b' });
    assert.ok(err.message.includes('[4,12]'));
  });

  test('identical ranges for two tensors are an overlap', () => {
    const bytes = handFile(`{${f32('a', [1], 0, 4)},${f32('b', [1], 0, 4)}}`, new Uint8Array(4));
    expectSafetensorsError(dec(bytes), ['overlap'], { tensor: 'b' });
  });

  test('a gap between tensors: data buffer not fully covered', () => {
    const bytes = handFile(`{${f32('a', [1], 0, 4)},${f32('b', [1], 8, 12)}}`, new Uint8Array(12));
    expectSafetensorsError(dec(bytes), ['data buffer not fully covered', 'bytes [4,8)'], { tensor: 'b' });
  });

  test('trailing bytes after the last tensor: data buffer not fully covered', () => {
    const bytes = handFile(`{${f32('a', [1], 0, 4)}}`, new Uint8Array(8));
    const err = expectSafetensorsError(dec(bytes), ['data buffer not fully covered', 'end at byte 4', '8 bytes', '4 trailing bytes']);
    assert.equal(err.tensor, undefined);
    // a file with no tensors but a non-empty data buffer is also incomplete
    expectSafetensorsError(dec(handFile('{}', [1, 2])), ['data buffer not fully covered', '2 trailing bytes']);
  });

  test('metadata must be an object of strings', () => {
    expectSafetensorsError(dec(handFile('{"__metadata__":{"epoch":3}}')), ['__metadata__ value for key "epoch" must be a string', 'number 3']);
    expectSafetensorsError(dec(handFile('{"__metadata__":{"a":{"b":"c"}}}')), ['key "a" must be a string', 'an object']);
    expectSafetensorsError(dec(handFile('{"__metadata__":["x"]}')), ['__metadata__ must be an object of strings', 'an array']);
    // null means "no metadata" (Option::None in the reference)
    assert.deepEqual(decodeSafetensors(handFile('{"__metadata__":null}')).metadata, {});
  });

  test('errors without a file name say <buffer>', () => {
    expectSafetensorsError(() => decodeSafetensors(new Uint8Array(3)), ['shorter than'], { file: '<buffer>' });
  });

  test('decode leaves the input bytes untouched even when it rejects them', () => {
    const bytes = handFile(`{${f32('a', [2], 0, 8)},${f32('b', [2], 4, 12)}}`, new Uint8Array(12).fill(7));
    const copy = bytes.slice();
    assert.throws(dec(bytes), SafetensorsError);
    assert.deepEqual(bytes, copy);
  });
});

describe('encode validates its input', () => {
  const t = (o: Partial<RawTensor>): RawTensor => ({ dtype: 'F32', shape: [2], data: new Uint8Array(8), ...o });

  test('data length must equal numel * element size', () => {
    expectSafetensorsError(() => encodeSafetensors({ w: t({ data: new Uint8Array(7) }) }), ['data has 7 bytes but shape [2] F32 needs 2 × 4 = 8 bytes'], {
      tensor: 'w',
      file: '<buffer>',
    });
    expectSafetensorsError(() => encodeSafetensors({ s: t({ shape: [], data: new Uint8Array(0) }) }), ['data has 0 bytes but shape [] F32 needs 1 × 4 = 4'], {
      tensor: 's',
      file: '<buffer>',
    });
  });

  test('unknown dtype, bad shape, reserved name, non-string metadata', () => {
    expectSafetensorsError(() => encodeSafetensors({ w: t({ dtype: 'F8' as SafeDType }) }), ['unknown dtype "F8"', 'supported dtypes'], { tensor: 'w', file: '<buffer>' });
    expectSafetensorsError(() => encodeSafetensors({ w: t({ shape: [-2] }) }), ['shape[0] is number -2'], { tensor: 'w', file: '<buffer>' });
    expectSafetensorsError(() => encodeSafetensors({ __metadata__: t({}) }), ['reserved'], { tensor: '__metadata__', file: '<buffer>' });
    expectSafetensorsError(() => encodeSafetensors({}, { epoch: 3 as unknown as string }), ['metadata value for key "epoch" must be a string'], { file: '<buffer>' });
  });

  test('writeSafetensorsFile errors name the path and leave an existing file untouched', () => {
    const dir = freshDir();
    const file = path.join(dir, 'keep.safetensors');
    writeSafetensorsFile(file, { ok: t({}) });
    const before = fs.readFileSync(file);
    expectSafetensorsError(() => writeSafetensorsFile(file, { w: t({ data: new Uint8Array(3) }) }), ['data has 3 bytes'], { tensor: 'w', file });
    assert.deepEqual(fs.readFileSync(file), before);
    assert.deepEqual(fs.readdirSync(dir), ['keep.safetensors']);
  });
});

describe('readSafetensorsHeader', () => {
  test('reads only the prefix and header bytes, never the tensor data', (t) => {
    const dir = freshDir();
    const file = path.join(dir, 'big.safetensors');
    const data = new Uint8Array(1 << 20);
    writeSafetensorsFile(file, { big: { dtype: 'F32', shape: [256, 1024], data }, small: { dtype: 'U8', shape: [3], data: new Uint8Array(3) } }, { k: 'v' });
    const n = headerLen(fs.readFileSync(file).subarray(0, 8));

    const realReadSync = fs.readSync;
    let bytesRequested = 0;
    t.mock.method(fs, 'readSync', ((...args: Parameters<typeof fs.readSync>) => {
      const r = (realReadSync as (...a: unknown[]) => number)(...args);
      bytesRequested += r;
      return r;
    }) as typeof fs.readSync);
    t.mock.method(fs, 'readFileSync', () => {
      throw new Error('readSafetensorsHeader must not read the whole file');
    });
    const hdr = readSafetensorsHeader(file);
    t.mock.restoreAll();

    assert.equal(bytesRequested, 8 + n, 'exactly prefix + header bytes were read');
    assert.ok(bytesRequested < 4096);
    assert.deepEqual(hdr.entries.big, { dtype: 'F32', shape: [256, 1024], offsets: [0, 1 << 20] });
    assert.deepEqual(hdr.entries.small, { dtype: 'U8', shape: [3], offsets: [1 << 20, (1 << 20) + 3] });
    assert.deepEqual(hdr.metadata, { k: 'v' });
  });

  test('applies the same validation as decode (file too short, bad header)', () => {
    const dir = freshDir();
    const short = path.join(dir, 'short.safetensors');
    fs.writeFileSync(short, Uint8Array.from([1, 2, 3]));
    expectSafetensorsError(() => readSafetensorsHeader(short), ['3 bytes', 'shorter than the 8-byte'], { file: short });
    const bad = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(bad, handFile('{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', [0]));
    expectSafetensorsError(() => readSafetensorsHeader(bad), ['unknown dtype "Q4"'], { file: bad, tensor: 'w' });
  });
});

// ---------------------------------------------------------------------------
// atomic writes
// ---------------------------------------------------------------------------

describe('writeFileAtomic', () => {
  test('creates parent directories and writes exactly the data; nothing else is left in the directory', () => {
    const dir = freshDir();
    const target = path.join(dir, 'a', 'b', 'out.bin');
    writeFileAtomic(target, Uint8Array.from([1, 2, 3]));
    assert.deepEqual(Array.from(fs.readFileSync(target)), [1, 2, 3]);
    assert.deepEqual(fs.readdirSync(path.dirname(target)), ['out.bin']);
    writeFileAtomic(path.join(dir, 'text.txt'), 'héllo');
    assert.equal(fs.readFileSync(path.join(dir, 'text.txt'), 'utf8'), 'héllo');
  });

  test('makeParents: false — a missing folder is an ENOENT error and nothing is created', () => {
    const dir = freshDir();
    const target = path.join(dir, 'gone', 'batch.safetensors');
    assert.throws(() => writeFileAtomic(target, 'x', { makeParents: false }), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    assert.deepEqual(fs.readdirSync(dir), []);
    writeFileAtomic(path.join(dir, 'here.txt'), 'y', { makeParents: false });
    assert.deepEqual(fs.readdirSync(dir), ['here.txt']);
  });

  test('replaces existing content completely (new content shorter than old)', () => {
    const dir = freshDir();
    const target = path.join(dir, 'f.txt');
    writeFileAtomic(target, 'old content that is long');
    writeFileAtomic(target, 'new');
    assert.equal(fs.readFileSync(target, 'utf8'), 'new');
    assert.deepEqual(fs.readdirSync(dir), ['f.txt']);
  });

  test('temp files live next to the target and carry the pid plus a random suffix', () => {
    const target = path.join(TMP, 'x', 'model.safetensors');
    const a = atomicTempName(target);
    const b = atomicTempName(target);
    assert.equal(path.dirname(a), path.dirname(target));
    assert.ok(path.basename(a).includes(String(process.pid)));
    assert.ok(path.basename(a).includes('model.safetensors'));
    assert.notEqual(a, b);
  });

  test('failure mid-write (fsync throws): old content intact, temp file removed', (t) => {
    const dir = freshDir();
    const target = path.join(dir, 'ckpt.bin');
    writeFileAtomic(target, 'OLD');
    let calls = 0;
    const realFsync = fs.fsyncSync;
    t.mock.method(fs, 'fsyncSync', (fd: number) => {
      calls++;
      // the temp file is fully written at this point: make sure it really existed
      assert.equal(fs.readdirSync(dir).length, 2, 'temp file exists during the write');
      if (calls === 1) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
      return realFsync(fd);
    });
    assert.throws(() => writeFileAtomic(target, 'NEW CONTENT'), /EIO: simulated/);
    t.mock.restoreAll();
    assert.equal(calls, 1);
    assert.equal(fs.readFileSync(target, 'utf8'), 'OLD');
    assert.deepEqual(fs.readdirSync(dir), ['ckpt.bin']);
  });

  test('failure at rename (target is a directory): target unchanged, temp file removed', () => {
    const dir = freshDir();
    const target = path.join(dir, 'out');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    assert.throws(() => writeFileAtomic(target, 'data'), (e: NodeJS.ErrnoException) => typeof e.code === 'string');
    assert.ok(fs.statSync(target).isDirectory());
    assert.deepEqual(fs.readdirSync(dir), ['out']);
  });

  test('failure when the parent path is a file: nothing is created', () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    assert.throws(() => writeFileAtomic(path.join(dir, 'file', 'sub', 'out.bin'), 'data'), (e: NodeJS.ErrnoException) =>
      ['ENOTDIR', 'EEXIST'].includes(e.code ?? ''),
    );
    assert.deepEqual(fs.readdirSync(dir), ['file']);
    assert.equal(fs.readFileSync(path.join(dir, 'file'), 'utf8'), 'x');
  });

  test('writeJsonAtomic writes pretty JSON with a trailing newline', () => {
    const dir = freshDir();
    const target = path.join(dir, 'cfg.json');
    const value = { a: 1, b: [1, 2], c: { d: 'e' } };
    writeJsonAtomic(target, value);
    const text = fs.readFileSync(target, 'utf8');
    assert.equal(text, JSON.stringify(value, null, 2) + '\n');
    assert.deepEqual(JSON.parse(text), value);
    assert.throws(() => writeJsonAtomic(path.join(dir, 'u.json'), undefined), /not JSON-serialisable/);
    assert.deepEqual(fs.readdirSync(dir), ['cfg.json']);
  });
});

// ---------------------------------------------------------------------------
// f16 / bf16 conversions
// ---------------------------------------------------------------------------

function toF16(x: number): number {
  return f32ToF16(new Float32Array([x]))[0]!;
}
function fromF16(h: number): number {
  return f16ToF32(new Uint16Array([h]))[0]!;
}
function toBf16(x: number): number {
  return f32ToBf16(new Float32Array([x]))[0]!;
}
function toBf16Bits(b: number): number {
  return f32ToBf16(new Float32Array(new Uint32Array([b >>> 0]).buffer))[0]!;
}
function toF16Bits(b: number): number {
  return f32ToF16(new Float32Array(new Uint32Array([b >>> 0]).buffer))[0]!;
}

describe('float16', () => {
  test('hand-worked f32 -> f16 values', () => {
    const cases: [number, number][] = [
      [1.0, 0x3c00],
      [-2.0, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // max finite
      [65519, 0x7bff], // below the midpoint to "65536"
      [65520, 0x7c00], // midpoint: ties-to-even rounds to inf (0x7C00 is even)
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [2 ** -14, 0x0400], // min normal
      [2 ** -24, 0x0001], // min subnormal
      [1023 * 2 ** -24, 0x03ff], // max subnormal
      [2 ** -25, 0x0000], // exactly half the min subnormal: tie -> even (0)
      [3 * 2 ** -26, 0x0001], // 0.75 * min subnormal -> rounds up
      [1e-8, 0x0000], // below half the min subnormal: flushes to +0
      [-1e-8, 0x8000], // ... keeping the sign
      [6e-8, 0x0001], // just above min subnormal (5.96e-8)
      [1 + 2 ** -11, 0x3c00], // tie between 0x3C00 and 0x3C01 -> even
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3C01 and 0x3C02 -> even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [0, 0x0000],
      [-0, 0x8000],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
    ];
    for (const [x, h] of cases) {
      assert.equal(toF16(x), h, `f32ToF16(${x}) = 0x${toF16(x).toString(16)}, expected 0x${h.toString(16)}`);
    }
  });

  test('NaN stays NaN (never becomes inf), including NaNs whose payload is only in the low bits', () => {
    for (const bits of [0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000]) {
      const h = toF16Bits(bits);
      assert.equal(h & 0x7c00, 0x7c00, `exponent all ones for 0x${bits.toString(16)}`);
      assert.notEqual(h & 0x3ff, 0, `mantissa non-zero (NaN, not inf) for 0x${bits.toString(16)}`);
      assert.equal(h >> 15, bits >>> 31, 'sign kept');
    }
    assert.ok(Number.isNaN(fromF16(toF16(NaN))), 'NaN -> f16 -> f32 is NaN');
  });

  test('hand-worked f16 -> f32 values', () => {
    assert.equal(fromF16(0x3c00), 1);
    assert.equal(fromF16(0xc000), -2);
    assert.equal(fromF16(0x7bff), 65504);
    assert.equal(fromF16(0x2e66), 0.0999755859375);
    assert.equal(fromF16(0x3555), 0.333251953125);
    assert.equal(fromF16(0x0001), 2 ** -24);
    assert.equal(fromF16(0x8001), -(2 ** -24));
    assert.equal(fromF16(0x03ff), 1023 * 2 ** -24);
    assert.equal(fromF16(0x0400), 2 ** -14);
    assert.equal(fromF16(0x7c00), Infinity);
    assert.equal(fromF16(0xfc00), -Infinity);
    assert.ok(Number.isNaN(fromF16(0x7e00)));
    assert.ok(Number.isNaN(fromF16(0x7c01)));
    assert.ok(Object.is(fromF16(0x8000), -0));
    assert.ok(Object.is(fromF16(0x0000), 0));
  });

  test('all 65536 f16 bit patterns: f16 -> f32 -> f16 is the identity (signalling NaNs come back quiet), values strictly increasing', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = f16ToF32(all);
    const back = f32ToF16(f);
    for (let h = 0; h < 65536; h++) {
      const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN16) {
        assert.ok(Number.isNaN(f[h]!), `0x${h.toString(16)} is NaN`);
        assert.equal(back[h], h | 0x0200, `NaN 0x${h.toString(16)}: sign and payload kept, quiet bit set`);
      } else if (back[h] !== h) {
        assert.fail(`round trip of 0x${h.toString(16)} gave 0x${back[h]!.toString(16)}`);
      }
    }
    for (let h = 1; h <= 0x7c00; h++) assert.ok(f[h]! > f[h - 1]!, `monotonic at 0x${h.toString(16)}`);
  });

  test('round-to-nearest-even at every f16 midpoint and one float32 ulp either side', () => {
    const pos = f16ToF32(new Uint16Array(0x7c01).map((_, i) => i)); // 0 .. +inf
    const vals: number[] = Array.from(pos);
    vals[0x7c00] = 65536; // the "next value" after 65504 for rounding purposes
    for (let h = 0; h < 0x7c00; h++) {
      const mid = (vals[h]! + vals[h + 1]!) / 2;
      assert.equal(Math.fround(mid), mid, 'midpoints are representable in f32');
      const even = h % 2 === 0 ? h : h + 1;
      const midBits = bits32(mid);
      const below = toF16Bits(midBits - 1);
      const at = toF16Bits(midBits);
      const above = toF16Bits(midBits + 1);
      if (at !== even || below !== h || above !== h + 1) {
        assert.fail(`around midpoint of 0x${h.toString(16)}: below=0x${below.toString(16)} at=0x${at.toString(16)} above=0x${above.toString(16)}`);
      }
      if (toF16(-mid) !== (even | 0x8000)) assert.fail(`negative midpoint of 0x${h.toString(16)}`);
    }
  });

  test('random float32 inputs round to the nearest f16 (oracle: search over the sorted f16 values)', () => {
    const pos = Array.from(f16ToF32(new Uint16Array(0x7c01).map((_, i) => i)));
    pos[0x7c00] = 65536;
    const r = rng(7);
    for (let i = 0; i < 20000; i++) {
      // exponents spread across the f16 range and beyond
      const bits = ((Math.floor(r() * 2) << 31) | ((90 + Math.floor(r() * 60)) << 23) | Math.floor(r() * 0x800000)) >>> 0;
      const x = floatOfBits(bits);
      const ax = Math.abs(x);
      let lo = 0;
      let hi = 0x7c00;
      while (hi - lo > 1) {
        const m = (lo + hi) >> 1;
        if (pos[m]! <= ax) lo = m;
        else hi = m;
      }
      let want: number;
      if (ax >= 65536) want = 0x7c00;
      else {
        const dLo = ax - pos[lo]!;
        const dHi = pos[lo + 1]! - ax;
        want = dLo < dHi ? lo : dHi < dLo ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
      }
      if (x < 0) want |= 0x8000;
      const got = toF16(x);
      if (got !== want) assert.fail(`f32ToF16(${x}) = 0x${got.toString(16)}, nearest-even is 0x${want.toString(16)}`);
    }
  });
});

describe('bfloat16', () => {
  test('hand-worked values', () => {
    assert.equal(toBf16(1.0), 0x3f80);
    assert.equal(toBf16(-2.0), 0xc000);
    assert.equal(toBf16(Math.PI), 0x4049);
    assert.equal(toBf16(1.00390625), 0x3f80); // 1 + 2^-8: exact tie between 0x3F80 and 0x3F81 -> even 0x3F80
    assert.equal(toBf16(1.01171875), 0x3f82); // 1 + 3*2^-8: tie between 0x3F81 and 0x3F82 -> even 0x3F82
    assert.equal(toBf16Bits(0x3f808001), 0x3f81); // just above the tie rounds up
    assert.equal(toBf16Bits(0x3f807fff), 0x3f80); // just below the tie rounds down
    assert.equal(toBf16Bits(0x7f7fffff), 0x7f80); // max float32 overflows to +inf
    assert.equal(toBf16(Infinity), 0x7f80);
    assert.equal(toBf16(-Infinity), 0xff80);
    assert.equal(toBf16(-0), 0x8000);
    assert.equal(toBf16Bits(0x00000001), 0x0000); // smallest f32 subnormal rounds to 0
    assert.equal(toBf16Bits(0x00008000), 0x0000); // tie -> even
    assert.equal(toBf16Bits(0x00018000), 0x0002); // tie -> even (up)
    for (const nan of [0x7fc00000, 0x7f800001, 0xff800001]) {
      const b = toBf16Bits(nan);
      assert.equal(b & 0x7f80, 0x7f80);
      assert.notEqual(b & 0x7f, 0, `NaN 0x${nan.toString(16)} stays NaN, not inf`);
    }
    assert.equal(bf16ToF32(new Uint16Array([0x3f80]))[0], 1);
    assert.equal(bf16ToF32(new Uint16Array([0x4049]))[0], 3.140625);
    assert.equal(bf16ToF32(new Uint16Array([0xc000]))[0], -2);
    assert.equal(bf16ToF32(new Uint16Array([0xff80]))[0], -Infinity);
    assert.ok(Number.isNaN(bf16ToF32(new Uint16Array([0x7fc0]))[0]!));
  });

  test('all 65536 bf16 patterns round-trip through f32 unchanged (signalling NaNs come back quiet)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToBf16(bf16ToF32(all));
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      const want = isNaN ? h | 0x0040 : h;
      if (back[h] !== want) assert.fail(`0x${h.toString(16)} -> 0x${back[h]!.toString(16)}, expected 0x${want.toString(16)}`);
    }
  });

  test('random float32 inputs round to the nearest bf16, ties to even (oracle on the two neighbours)', () => {
    const r = rng(11);
    for (let i = 0; i < 50000; i++) {
      const bits = Math.floor(r() * 2 ** 32);
      if ((bits & 0x7f800000) === 0x7f800000) continue; // inf/NaN covered above
      const x = floatOfBits(bits);
      const t = bits >>> 16;
      const lo = floatOfBits(t << 16);
      const hi = (t & 0x7fff) === 0x7f7f ? Math.sign(x) * 2 ** 128 : floatOfBits((t + 1) << 16);
      const dLo = Math.abs(x - lo);
      const dHi = Math.abs(hi - x);
      const want = dLo < dHi ? t : dHi < dLo ? t + 1 : t % 2 === 0 ? t : t + 1;
      const got = toBf16(x);
      if (got !== want) assert.fail(`f32ToBf16(bits 0x${bits.toString(16)}) = 0x${got.toString(16)}, expected 0x${want.toString(16)}`);
    }
  });
});

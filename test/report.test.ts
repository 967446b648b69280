// Report layer: PNG grids (decoded back with pngjs and checked pixel by pixel), SVG line charts
// (well-formed, no NaN), and the HTML run / comparison reports on a run folder made here.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pngjs from 'pngjs';

import * as T from '../src/tensor/tensor.js';
import {
  cellOrigin, classGrid, drawBoxes, gridLayout, imageGrid, layoutPathFor, parseColor, saveGridLayout, savePng, type ImageBatch,
} from '../src/report/png.js';
import { escapeXml, formatTick, lineChart, niceTicks } from '../src/report/svg.js';
import {
  listSamples, metricsCharts, parseMetrics, renderComparisonReport, writeComparisonReport, writeRunReport,
} from '../src/report/html.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'report-test-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

type RGB = [number, number, number];

function decode(bytes: Uint8Array): { width: number; height: number; at: (x: number, y: number) => RGB; alphaAll255: boolean } {
  const png = pngjs.PNG.sync.read(Buffer.from(bytes));
  let alphaAll255 = true;
  for (let i = 3; i < png.data.length; i += 4) if (png.data[i] !== 255) alphaAll255 = false;
  return {
    width: png.width,
    height: png.height,
    alphaAll255,
    at: (x, y) => {
      assert.ok(x >= 0 && y >= 0 && x < png.width && y < png.height, `pixel (${x}, ${y}) outside ${png.width}×${png.height}`);
      const o = 4 * (y * png.width + x);
      return [png.data[o]!, png.data[o + 1]!, png.data[o + 2]!];
    },
  };
}

/** A batch of constant images: values[i] is image i's value (grey) or [r, g, b]. */
function constants(values: (number | RGB)[], h: number, w: number): ImageBatch {
  const c = typeof values[0] === 'number' ? 1 : 3;
  const data: number[] = [];
  for (const v of values) for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) data.push(typeof v === 'number' ? v : v[ch]!);
  return { shape: [values.length, c, h, w], data };
}

const grey = (v: number): RGB => [v, v, v];

// ---------------------------------------------------------------------------------------------
describe('imageGrid', () => {
  test('2×2 grid of constant images: size, scale, pixel values, padding colour', () => {
    const values = [0, 0.25, 0.5, 1];
    const expected = [0, 64, 128, 255];
    const t = T.tensor(constants(values, 2, 3).data as number[], { shape: [4, 1, 2, 3] });
    const bytes = imageGrid(t, { scale: 3, padding: 1, padColor: [10, 20, 30] });
    t.dispose();
    const img = decode(bytes);
    // cells 9×6 px (3×2 image at ×3), 2 columns and 2 rows with 1-px padding around and between
    assert.equal(img.width, 2 * 9 + 3);
    assert.equal(img.height, 2 * 6 + 3);
    assert.ok(img.alphaAll255);
    for (let r = 0; r < 2; r++) {
      for (let c = 0; c < 2; c++) {
        const x0 = 1 + c * 10;
        const y0 = 1 + r * 7;
        for (let y = 0; y < 6; y++) for (let x = 0; x < 9; x++) assert.deepEqual(img.at(x0 + x, y0 + y), grey(expected[r * 2 + c]!), `cell ${r},${c} pixel ${x},${y}`);
      }
    }
    for (const [x, y] of [[0, 0], [10, 3], [20, 14], [5, 7], [0, 14]] as const) assert.deepEqual(img.at(x, y), [10, 20, 30], `padding at ${x},${y}`);
  });

  test('RGB channels, clamping to [0, 1], NaN as 0, deterministic bytes', () => {
    const batch = constants([[1, 0, 0.5], [-3, 7, NaN]], 1, 1);
    const a = imageGrid(batch, { scale: 1, padding: 0, cols: 2 });
    const b = imageGrid(batch, { scale: 1, padding: 0, cols: 2 });
    assert.deepEqual(Buffer.from(a), Buffer.from(b));
    const img = decode(a);
    assert.equal(img.width, 2);
    assert.equal(img.height, 1);
    assert.deepEqual(img.at(0, 0), [255, 0, 128]);
    assert.deepEqual(img.at(1, 0), [0, 255, 0]);
  });

  test('default scale shows a 28-px image at ≥ 56 px; 224-px images are not upscaled; layout agrees with the PNG', () => {
    const t = T.zeros([3, 1, 28, 28]);
    const lay = gridLayout(t);
    assert.equal(lay.scale, 2);
    assert.equal(lay.cellWidth, 56);
    assert.deepEqual([lay.rows, lay.cols], [2, 2]);
    assert.deepEqual(lay.cells, [[0, 1], [2, null]]);
    const img = decode(imageGrid(t));
    assert.deepEqual([img.width, img.height], [lay.width, lay.height]);
    assert.deepEqual(img.at(cellOrigin(lay, 1, 1).x + 5, cellOrigin(lay, 1, 1).y + 5), [255, 255, 255], 'the empty cell is blank');
    t.dispose();
    assert.equal(gridLayout({ shape: [1, 3, 224, 224], data: new Float32Array(3 * 224 * 224) }).scale, 1);
  });

  test('uint8 tensors are read as 0..255; rows/cols options; errors', () => {
    const t = T.tensor([0, 100, 200, 255], { shape: [4, 1, 1, 1], dtype: 'uint8' });
    const img = decode(imageGrid(t, { rows: 1, scale: 1, padding: 0 }));
    t.dispose();
    assert.deepEqual([img.width, img.height], [4, 1]);
    assert.deepEqual([0, 1, 2, 3].map((x) => img.at(x, 0)[0]), [0, 100, 200, 255]);
    assert.throws(() => imageGrid(constants([0, 0, 0], 1, 1), { rows: 1, cols: 2 }), /cannot hold 3 images/);
    assert.throws(() => imageGrid({ shape: [2, 2, 1, 1], data: [0, 0, 0, 0] }), /channels/);
    assert.throws(() => imageGrid({ shape: [1, 1, 4], data: [0, 0, 0, 0] }), /\[N, C, H, W\]/);
    assert.throws(() => imageGrid(constants([0], 1, 1), { scale: 1.5 }), /scale/);
    assert.deepEqual(parseColor('#0a0B0c'), [10, 11, 12]);
    assert.deepEqual(parseColor('#fff'), [255, 255, 255]);
  });

  test('row labels are drawn in a left margin (contrasting ink) and shift the cells right', () => {
    const batch = constants([0.5, 0.5], 8, 8);
    const lay = gridLayout(batch, { cols: 1, scale: 1, padding: 2, rowLabels: ['A1', 'B2'] });
    assert.ok(lay.labelWidth > 0);
    assert.equal(cellOrigin(lay, 0, 0).x, lay.labelWidth + 2);
    const img = decode(imageGrid(batch, { cols: 1, scale: 1, padding: 2, rowLabels: ['A1', 'B2'] }));
    let ink = 0;
    for (let y = 0; y < img.height; y++) for (let x = 0; x < lay.labelWidth; x++) if (img.at(x, y)[0] === 0) ink++;
    assert.ok(ink > 10, `expected label ink in the margin, got ${ink} dark pixels`);
    assert.deepEqual(img.at(cellOrigin(lay, 1, 0).x, cellOrigin(lay, 1, 0).y), grey(128));
  });
});

// ---------------------------------------------------------------------------------------------
describe('classGrid', () => {
  test('one row per class, images in batch order, extra images dropped, empty cells blank', () => {
    const values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    const labels = [2, 0, 2, 1, 2, 2];
    const { png, layout } = classGrid(constants(values, 4, 4), labels, 3, 3, { scale: 1, padding: 1 });
    assert.deepEqual(layout.cells, [[1, null, null], [3, null, null], [0, 2, 4]]);
    assert.deepEqual(layout.counts, [1, 1, 4]);
    assert.deepEqual(layout.classes, [0, 1, 2]);
    assert.deepEqual(layout.rowLabels, ['0', '1', '2']);
    const img = decode(png);
    assert.deepEqual([img.width, img.height], [layout.width, layout.height]);
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) {
        const { x, y } = cellOrigin(layout, r, c);
        const idx = layout.cells[r]![c];
        const want = idx === null || idx === undefined ? grey(255) : grey(Math.round(values[idx]! * 255));
        assert.deepEqual(img.at(x + 2, y + 2), want, `cell ${r},${c}`);
      }
    }
  });

  test('labels from a tensor, class names, out-of-range labels rejected', () => {
    const y = T.tensor([1, 1, 0], { dtype: 'int64' });
    const { layout } = classGrid(constants([0, 0.5, 1], 2, 2), y, 2, 1, { classNames: ['cat', 'dog'] });
    y.dispose();
    assert.deepEqual(layout.cells, [[2], [0]]);
    assert.deepEqual(layout.rowLabels, ['cat', 'dog']);
    assert.deepEqual(layout.classNames, ['cat', 'dog']);
    assert.throws(() => classGrid(constants([0, 0], 1, 1), [0, 5], 3, 2), /label 5/);
    assert.throws(() => classGrid(constants([0, 0], 1, 1), [0], 3, 2), /1 labels for 2 images/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('drawBoxes', () => {
  test('outline pixels take the box colour, the interior and outside keep the image', () => {
    const batch = constants([0.5, 0.5], 10, 10);
    const red: RGB = [255, 0, 0];
    const bytes = drawBoxes(batch, [[{ x0: 2, y0: 3, x1: 7, y1: 8, label: 1, color: '#ff0000' }], []], { scale: 1, padding: 0, cols: 2 });
    const img = decode(bytes);
    assert.deepEqual([img.width, img.height], [20, 10]);
    // pixels covered: columns 2..6, rows 3..7
    for (let x = 2; x <= 6; x++) {
      assert.deepEqual(img.at(x, 3), red, `top edge x=${x}`);
      assert.deepEqual(img.at(x, 7), red, `bottom edge x=${x}`);
    }
    for (let y = 3; y <= 7; y++) {
      assert.deepEqual(img.at(2, y), red, `left edge y=${y}`);
      assert.deepEqual(img.at(6, y), red, `right edge y=${y}`);
    }
    for (let y = 4; y <= 6; y++) for (let x = 3; x <= 5; x++) assert.deepEqual(img.at(x, y), grey(128), `interior ${x},${y}`);
    for (const [x, y] of [[1, 3], [7, 5], [4, 2], [4, 8], [0, 0], [9, 9]] as const) assert.deepEqual(img.at(x, y), grey(128), `outside ${x},${y}`);
    for (let x = 10; x < 20; x++) for (let y = 0; y < 10; y++) assert.deepEqual(img.at(x, y), grey(128), 'the second image has no boxes');
  });

  test('boxes are clamped to their image, scaled with it, and coloured per label by default', () => {
    const batch = constants([0, 0], 8, 8);
    const bytes = drawBoxes(batch, [[{ x0: -5, y0: -5, x1: 50, y1: 50, label: 3 }], [{ x0: 0.25, y0: 0.25, x1: 0.75, y1: 0.75, label: 3 }]], {
      scale: 2, padding: 1, cols: 2, normalized: true,
    });
    const img = decode(bytes);
    const lay = gridLayout(batch, { scale: 2, padding: 1, cols: 2 });
    const o0 = cellOrigin(lay, 0, 0);
    const o1 = cellOrigin(lay, 0, 1);
    const c3 = img.at(o0.x, o0.y);
    assert.notDeepEqual(c3, [0, 0, 0]);
    // the huge box is clamped to the first image's border (16×16 cell)
    assert.deepEqual(img.at(o0.x + 15, o0.y + 15), c3);
    assert.deepEqual(img.at(o0.x + 15, o0.y + 7), c3);
    assert.deepEqual(img.at(o0.x + 7, o0.y + 7), [0, 0, 0]);
    assert.deepEqual(img.at(o0.x + 16, o0.y), [255, 255, 255], 'padding untouched');
    // normalized [0.25, 0.75] of 8 px at ×2 → output pixels 4..11
    assert.deepEqual(img.at(o1.x + 4, o1.y + 4), c3, 'same label, same colour');
    assert.deepEqual(img.at(o1.x + 11, o1.y + 8), c3);
    assert.deepEqual(img.at(o1.x + 3, o1.y + 4), [0, 0, 0]);
    assert.deepEqual(img.at(o1.x + 12, o1.y + 8), [0, 0, 0]);
    assert.deepEqual(img.at(o1.x + 8, o1.y + 8), [0, 0, 0]);
  });
});

test('savePng and saveGridLayout write atomically', () => {
  const file = path.join(TMP, 'png', 'sub', 'grid.png');
  const { png, layout } = classGrid(constants([0.5], 2, 2), [0], 1, 1);
  savePng(file, png);
  saveGridLayout(file, layout);
  assert.deepEqual(fs.readFileSync(file), Buffer.from(png));
  assert.equal(layoutPathFor(file), path.join(TMP, 'png', 'sub', 'grid.layout.json'));
  assert.deepEqual(JSON.parse(fs.readFileSync(layoutPathFor(file), 'utf8')).cells, [[0]]);
  assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), ['grid.layout.json', 'grid.png']);
});

// ---------------------------------------------------------------------------------------------
/** Loose XML check: tags balance (self-closing ones aside) and the root is one <svg>. */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  let roots = 0;
  while ((m = re.exec(xml)) !== null) {
    const between = xml.slice(consumed, m.index);
    assert.ok(!/[<>]/.test(between), `stray angle bracket in text: ${JSON.stringify(between.slice(0, 80))}`);
    assert.ok(!/&(?!(amp|lt|gt|quot|#39);)/.test(between), `unescaped & in text: ${JSON.stringify(between.slice(0, 80))}`);
    consumed = m.index + m[0].length;
    const [, close, name, , self] = m;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else if (!self) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
  }
  assert.ok(!/[<>]/.test(xml.slice(consumed)), 'trailing stray angle bracket');
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.equal(roots, 1);
}

describe('lineChart', () => {
  test('well-formed SVG with title, axes labels, legend names (escaped) and no NaN coordinates', () => {
    const svg = lineChart({
      title: 'Loss <& "quotes">',
      xLabel: 'iteration',
      yLabel: 'loss',
      series: [
        { name: 'S/kd', points: [[0, 2], [100, NaN], [200, 1.2], [300, 0.7], [Infinity, 1]] },
        { name: 'G/adv <b>', points: [[0, -0.5], [150, 0.3], [300, 0.1]], dashed: true },
        { name: 'empty', points: [[1, NaN]] },
      ],
    });
    assertWellFormed(svg);
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    assert.ok(svg.includes('S/kd'));
    assert.ok(svg.includes('G/adv &lt;b&gt;'));
    assert.ok(svg.includes('Loss &lt;&amp; &quot;quotes&quot;&gt;'));
    assert.ok(svg.includes('empty (no data)'));
    assert.ok(!/NaN|Infinity/.test(svg), 'no NaN/Infinity anywhere');
    // every number in a coordinate attribute or path is finite
    for (const m of svg.matchAll(/ (?:x|y|x1|y1|x2|y2|cx|cy|width|height)="([^"]*)"/g)) assert.ok(Number.isFinite(Number(m[1])), `attribute value ${m[1]}`);
    const paths = [...svg.matchAll(/<path d="([^"]*)"[^>]*stroke-width="1.5"/g)].map((m) => m[1]!);
    assert.equal(paths.length, 2, 'one line per series with ≥ 2 finite points');
    assert.equal((paths[0]!.match(/[ML]/g) ?? []).length, 3, 'S/kd: the NaN and Infinity points are skipped');
  });

  test('edge cases: no data, a single point, a fixed y range, long series thinned', () => {
    const none = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [] });
    assertWellFormed(none);
    assert.ok(none.includes('no data'));
    const one = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[5, 5]] }] });
    assertWellFormed(one);
    assert.ok(one.includes('<circle'));
    assert.ok(!one.includes('NaN'));
    const ranged = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', yRange: [0, 1], series: [{ name: 'acc', points: [[0, 0.1], [1, 0.9]] }] });
    assert.ok(ranged.includes('>0.0<') && ranged.includes('>1.0<'), 'y ticks span the fixed range');
    const n = 20000;
    const long = lineChart({
      title: 't', xLabel: 'x', yLabel: 'y', maxPoints: 1000,
      series: [{ name: 'noisy', points: Array.from({ length: n }, (_, i) => [i, i === 12345 ? 100 : Math.sin(i)] as [number, number]) }],
    });
    assertWellFormed(long);
    const d = /<path d="([^"]*)"[^>]*stroke-width="1.5"/.exec(long)![1]!;
    const count = (d.match(/[ML]/g) ?? []).length;
    assert.ok(count < n / 4, `thinned to ${count} points`);
    assert.ok(long.includes('>100<') || /<text[^>]*>100<\/text>/.test(long), 'the spike still sets the y range');
  });

  test('niceTicks and formatTick', () => {
    assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceTicks(0, 613, 5), [0, 100, 200, 300, 400, 500, 600]);
    assert.deepEqual(niceTicks(-0.3, 0.25, 5), [-0.3, -0.2, -0.1, 0, 0.1, 0.2]);
    assert.deepEqual(niceTicks(3, 3), [3]);
    assert.equal(formatTick(20000, 5000), '20k');
    assert.equal(formatTick(0.30000000000000004, 0.1), '0.3');
    assert.equal(escapeXml(`a<b>&"'`), 'a&lt;b&gt;&amp;&quot;&#39;');
  });
});

// ---------------------------------------------------------------------------------------------
describe('HTML reports', () => {
  test('parseMetrics skips blank and torn lines', () => {
    const { rows, skipped } = parseMetrics('{"a":1}\n\n{"a":2}\n{"a":3,"b"\n[1]\n');
    assert.deepEqual(rows, [{ a: 1 }, { a: 2 }]);
    assert.equal(skipped, 2);
  });

  test('metricsCharts: accuracy vs seconds and vs iteration, losses grouped by G/ and S/, lr apart', () => {
    const rows = [
      { iteration: 0, seconds: 0, 'G/adv': 1, 'G/bn': 2, 'S/kd': 3, lr: 0.1 },
      { iteration: 10, seconds: 5, 'G/adv': 0.5, 'G/bn': 1, 'S/kd': 2, lr: 0.05, val_acc: 0.4, test_acc: 0.38 },
      { iteration: 20, seconds: 11, 'G/adv': 0.2, 'G/bn': 0.6, 'S/kd': 1, train_loss: 0.7, lr: 0.01, val_acc: 0.7 },
    ];
    const charts = metricsCharts(rows);
    assert.deepEqual(charts.map((c) => c.title), [
      'Accuracy vs seconds', 'Accuracy vs iteration', 'Generator / synthesis losses (G/…)', 'Student losses (S/…)', 'Other metrics', 'Learning rate',
    ]);
    assert.ok(charts[0]!.svg.includes('val_acc') && charts[0]!.svg.includes('test_acc'));
    assert.ok(charts[2]!.svg.includes('G/adv') && charts[2]!.svg.includes('G/bn') && !charts[2]!.svg.includes('S/kd'));
    assert.ok(charts[4]!.svg.includes('train_loss'));
    for (const c of charts) assertWellFormed(c.svg);
    assert.deepEqual(metricsCharts([]), []);
  });

  test('writeRunReport: result table, a chart per metric group, samples in iteration order, escaped config', () => {
    const run = path.join(TMP, 'run-tgan');
    fs.mkdirSync(path.join(run, 'samples'), { recursive: true });
    fs.writeFileSync(path.join(run, 'config.json'), JSON.stringify({
      method: 'tgan', dataset: 'mnist', note: '<script>alert("x")</script>', student: { model: 'vit-student-28', depth: 4 }, seeds: [1, 2],
    }));
    const lines = [
      { iteration: 0, seconds: 0.5, 'G/adv': 1.5, 'S/kd': 2.3 },
      { iteration: 500, seconds: 61, 'G/adv': 0.9, 'S/kd': 1.1, val_acc: 0.41 },
      { iteration: 1000, seconds: 120, 'G/adv': 0.7, 'S/kd': 0.6, val_acc: 0.83, test_acc: 0.82 },
    ];
    fs.writeFileSync(path.join(run, 'metrics.jsonl'), `${lines.map((l) => JSON.stringify(l)).join('\n')}\n{"iteration": 15`);
    fs.writeFileSync(path.join(run, 'result.json'), JSON.stringify({
      method: 'tgan', teacher_acc: 0.9812, student_acc: 0.9321, retention: 0.9499, params: 123456, flops: 9876543, iterations: 1000, seconds: 612.5,
    }));
    // written out of order, and the 1000 one sorts after 500 though "iter-1000" < "iter-500" as text
    const grid = classGrid(constants([0.2, 0.8], 4, 4), [1, 0], 2, 2);
    savePng(path.join(run, 'samples', 'iter-1000.png'), grid.png);
    saveGridLayout(path.join(run, 'samples', 'iter-1000.png'), grid.layout);
    savePng(path.join(run, 'samples', 'iter-500.png'), imageGrid(constants([0.5], 4, 4)));
    savePng(path.join(run, 'samples', 'final preview.png'), imageGrid(constants([0.5], 4, 4)));

    assert.deepEqual(listSamples(run).map((s) => s.iteration), [500, 1000, null]);

    const file = writeRunReport(run);
    assert.equal(file, path.join(run, 'report.html'));
    const html = fs.readFileSync(file, 'utf8');
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    assert.deepEqual(fs.readdirSync(run).filter((n) => n.endsWith('.tmp')), [], 'no temporary files left');

    // final table values
    for (const v of ['tgan', '0.9321', '0.9812', '93.21%', '123456', '9876543', '612.5 (10m 13s)']) assert.ok(html.includes(v), `result value ${v}`);
    // charts: accuracy vs seconds, accuracy vs iteration, G/ losses, S/ losses
    assert.equal((html.match(/<svg /g) ?? []).length, 4);
    assert.equal((html.match(/<\/svg>/g) ?? []).length, 4);
    assert.ok(!html.includes('NaN'));
    // samples as relative links, in iteration order
    const imgs = [...html.matchAll(/<img src="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(imgs, ['samples/iter-500.png', 'samples/iter-1000.png', 'samples/final%20preview.png']);
    assert.ok(html.includes('rows, top to bottom (in brackets: images of that class in the batch): class 0 (1), class 1 (1)'), 'class grid caption from the layout sidecar');
    // the config is escaped, collapsible, flattened
    assert.ok(!/<script/i.test(html), 'no live <script> in the page');
    assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
    assert.ok(/<details>\s*<summary>config\.json/.test(html));
    assert.ok(html.includes('student.model') && html.includes('vit-student-28'));
    // the torn last metrics line is reported, not fatal
    assert.ok(html.includes('1 line(s) could not be parsed'));
    // no external assets
    assert.ok(!/(src|href)="(https?:)?\/\//.test(html));
  });

  test('writeRunReport on an empty folder still writes a page', () => {
    const run = path.join(TMP, 'run-empty');
    fs.mkdirSync(run, { recursive: true });
    const html = fs.readFileSync(writeRunReport(run), 'utf8');
    assert.ok(html.includes('No result.json yet'));
    assert.ok(html.includes('No metrics logged yet'));
    assert.ok(!html.includes('<svg'));
  });

  test('writeComparisonReport: table of rows and one accuracy-vs-time series per method', () => {
    const rows = [
      { method: 'tgan', test_acc: 0.93, retention: 0.95, seconds: 600, iterations: 2000 },
      { method: 'dfad', test_acc: 0.88, retention: 0.9, seconds: 600, iterations: 1800, note: '<i>' },
    ];
    const curves = [
      { name: 'tgan', points: [[0, 0.1], [300, 0.8], [600, 0.93]] as [number, number][] },
      { name: 'dfad', points: [[0, 0.1], [300, 0.7], [600, 0.88]] as [number, number][] },
    ];
    const file = path.join(TMP, 'bench', 'distill-mnist.html');
    writeComparisonReport(file, rows, curves, { title: 'distill-mnist', summary: { teacher_acc: 0.98 } });
    const html = fs.readFileSync(file, 'utf8');
    assert.equal(html, html.replace(/<i>/g, '')); // escaped
    assert.ok(html.includes('&lt;i&gt;'));
    assert.equal((html.match(/<svg /g) ?? []).length, 1);
    assert.ok(html.includes('>tgan<') && html.includes('>dfad<'));
    assert.ok(/<th scope="col">note<\/th>/.test(html) && html.includes('<td class="na">—</td>'), 'union of columns, missing cells marked');
    const svg = /<svg[\s\S]*<\/svg>/.exec(renderComparisonReport(rows, curves))![0];
    assertWellFormed(svg);
  });
});

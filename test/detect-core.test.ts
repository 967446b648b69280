// detect/: box conversions, IoU / GIoU values worked by hand and gradients vs finite differences
// (float64), Hungarian matching vs brute force, the DETR set loss, and COCO mAP on hand-worked fixtures.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as T from '../src/index.js';
import { gradcheck, type Tensor } from '../src/index.js';
import { boxCxcywhToXyxy, boxIou, boxXyxyToCxcywh, generalizedBoxIou, iouXyxy, pairedGiou } from '../src/detect/boxes.js';
import { assignmentCost, linearSumAssignment } from '../src/detect/matching.js';
import { detrSetLoss, hungarianMatch, setLossGivenMatch, type DetectionTarget } from '../src/detect/loss.js';
import { COCO_IOU_THRESHOLDS, evaluateDetections, type DetectionBox, type GroundTruthBox } from '../src/detect/map.js';
import { mulberry32 } from '../src/data/loader.js';

T.setNumThreads(1);
T.manualSeed(5);
const t64 = (v: unknown[]): Tensor => T.tensor(v, { dtype: 'float64' });
const close = (a: number, b: number, tol = 1e-9, what = ''): void => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

describe('boxes', () => {
  test('cxcywh ↔ xyxy round trip and values', () => {
    const b = t64([[0.5, 0.5, 0.2, 0.4], [0.1, 0.9, 0.2, 0.2]]);
    assert.deepEqual(boxCxcywhToXyxy(b).toArray().map((x) => +x.toFixed(12)), [0.4, 0.3, 0.6, 0.7, 0, 0.8, 0.2, 1]);
    const back = boxXyxyToCxcywh(boxCxcywhToXyxy(b)).toArray();
    b.toArray().forEach((x, i) => close(back[i]!, x, 1e-12));
  });

  test('IoU and GIoU worked by hand', () => {
    // A = [0,0,2,2] (area 4), B = [1,1,3,3] (area 4): intersection 1, union 7 → IoU 1/7;
    // enclosing [0,0,3,3] area 9 → GIoU = 1/7 − (9 − 7)/9 = 1/7 − 2/9.
    // C = [4,0,5,1] (area 1), disjoint from A: IoU 0; enclosing [0,0,5,2] area 10, union 5 → GIoU = −0.5.
    const a = t64([[0, 0, 2, 2]]);
    const bc = t64([[1, 1, 3, 3], [4, 0, 5, 1], [0, 0, 2, 2]]);
    const iou = boxIou(a, bc).toArray();
    const giou = generalizedBoxIou(a, bc).toArray();
    close(iou[0]!, 1 / 7); close(iou[1]!, 0); close(iou[2]!, 1);
    close(giou[0]!, 1 / 7 - 2 / 9); close(giou[1]!, -0.5); close(giou[2]!, 1);
    close(iouXyxy([0, 0, 2, 2], [1, 1, 3, 3]), 1 / 7);
    close(iouXyxy([0, 0, 10, 10], [0, 0, 6, 10]), 0.6);
    const paired = pairedGiou(t64([[0, 0, 2, 2], [0, 0, 2, 2]]), t64([[1, 1, 3, 3], [4, 0, 5, 1]])).toArray();
    close(paired[0]!, 1 / 7 - 2 / 9); close(paired[1]!, -0.5);
    assert.throws(() => boxIou(t64([[0, 0, 1]]), a), /\[\.\.\., 4\]/);
  });

  test('GIoU and IoU gradients match finite differences (float64), overlapping and disjoint', () => {
    // cxcywh inputs through the conversion, as the loss uses them; values away from the kinks of max/min.
    const p = t64([[0.40, 0.45, 0.30, 0.25], [0.70, 0.30, 0.20, 0.35]]).requiresGrad_();
    const g = t64([[0.50, 0.50, 0.25, 0.30], [0.15, 0.80, 0.10, 0.12], [0.62, 0.33, 0.21, 0.28]]).requiresGrad_();
    const r1 = gradcheck((a, b) => generalizedBoxIou(boxCxcywhToXyxy(a), boxCxcywhToXyxy(b)), [p, g], { rtol: 1e-6 });
    assert.ok(r1.ok, JSON.stringify(r1));
    const r2 = gradcheck((a, b) => boxIou(boxCxcywhToXyxy(a), boxCxcywhToXyxy(b)), [p, g], { rtol: 1e-6 });
    assert.ok(r2.ok, JSON.stringify(r2));
  });
});

function bruteForce(cost: Float64Array, n: number, m: number): number {
  // Minimum over all injections of the smaller side into the larger.
  const small = Math.min(n, m);
  const big = Math.max(n, m);
  const at = (s: number, b: number): number => (n <= m ? cost[s * m + b]! : cost[b * m + s]!);
  let best = Infinity;
  const used = new Array<boolean>(big).fill(false);
  const rec = (s: number, acc: number): void => {
    if (s === small) { best = Math.min(best, acc); return; }
    for (let b = 0; b < big; b++) {
      if (used[b]) continue;
      used[b] = true;
      rec(s + 1, acc + at(s, b));
      used[b] = false;
    }
  };
  rec(0, 0);
  return best;
}

describe('Hungarian matching', () => {
  test('equals brute force on random square and rectangular matrices', () => {
    const rnd = mulberry32(17);
    let cases = 0;
    for (const [n, m] of [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, 6], [2, 5], [3, 6], [1, 6], [5, 2], [6, 3], [4, 7], [7, 4]] as const) {
      for (let rep = 0; rep < 12; rep++) {
        // Mix of continuous and tied integer costs (ties are where greedy matchers go wrong).
        const cost = Float64Array.from({ length: n * m }, () => (rep % 2 ? Math.floor(rnd() * 4) : rnd() * 10 - 5));
        const a = linearSumAssignment(cost, n, m);
        assert.equal(a.rows.length, Math.min(n, m));
        assert.equal(new Set(a.rows).size, a.rows.length, 'rows distinct');
        assert.equal(new Set(a.cols).size, a.cols.length, 'columns distinct');
        assert.deepEqual(a.rows, [...a.rows].sort((x, y) => x - y), 'sorted by row');
        a.rows.forEach((r, k) => assert.ok(r < n && a.cols[k]! < m));
        close(assignmentCost(cost, m, a), bruteForce(cost, n, m), 1e-9, `${n}×${m}`);
        cases++;
      }
    }
    assert.equal(cases, 156);
  });

  test('empty matrices and bad input', () => {
    assert.deepEqual(linearSumAssignment(new Float64Array(0), 3, 0), { rows: [], cols: [] });
    assert.throws(() => linearSumAssignment([1, 2, 3], 2, 2), /3 costs for a 2×2/);
    assert.throws(() => linearSumAssignment([1, NaN, 3, 4], 2, 2), /cost\[0\]\[1\] is NaN/);
  });
});

describe('DETR set loss', () => {
  // 1 image, 3 queries, 2 classes (+ no object). Query 1 is the right box for target 0 (class 1),
  // query 2 for target 1 (class 0); query 0 is background.
  const logitsArr = [[[2, -1, 3], [-1, 4, 0], [3, 0, -1]]];
  const boxesArr = [[[0.8, 0.8, 0.1, 0.1], [0.3, 0.3, 0.2, 0.2], [0.7, 0.25, 0.2, 0.3]]];
  const targets: DetectionTarget[] = [{ labels: [1, 0], boxes: [[0.3, 0.3, 0.2, 0.2], [0.7, 0.3, 0.2, 0.3]] }];

  test('matching picks the obvious queries; loss parts worked by hand', () => {
    const logits = t64(logitsArr);
    const boxes = t64(boxesArr);
    const m = hungarianMatch({ logits, boxes }, targets);
    assert.deepEqual(m, [{ queries: [1, 2], targets: [0, 1] }]);
    const parts = setLossGivenMatch({ logits, boxes }, targets, m);
    // CE with weights (1, 1, 0.1): targets per query = [2 (no object), 1, 0];
    // Σ w_i·(−log p_i) / Σ w_i with w = [0.1, 1, 1].
    const lsm = (row: number[], c: number): number => row[c]! - Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
    const row = logitsArr[0]!;
    const ce = -(0.1 * lsm(row[0]!, 2) + lsm(row[1]!, 1) + lsm(row[2]!, 0)) / 2.1;
    close(parts.ce.item(), ce, 1e-12, 'ce');
    // L1: only query 2 is off, by 0.05 in cy → 0.05 / 2 objects.
    close(parts.l1.item(), 0.025, 1e-12, 'l1');
    // GIoU of query 2 vs target 1: same size boxes shifted by 0.05 of a 0.3 height: IoU = 0.25/0.35,
    // enclosing = union (aligned in x) → 1 − GIoU = 1 − 0.25/0.35; over 2 objects.
    close(parts.giou.item(), (1 - 0.25 / 0.35) / 2, 1e-12, 'giou');
    close(parts.total.item(), ce + 5 * 0.025 + 2 * (1 - 0.25 / 0.35) / 2, 1e-12, 'total');
  });

  test('aux layers add their own matched losses; no-target images give CE only; gradients flow', () => {
    const logits = t64(logitsArr).requiresGrad_();
    const boxes = t64(boxesArr).requiresGrad_();
    const aux = { logits: logits.mul(0.5), boxes: boxes.mul(1) };
    const single = detrSetLoss({ logits, boxes }, targets).loss.item();
    const auxOnly = detrSetLoss(aux, targets).loss.item();
    const both = detrSetLoss({ logits, boxes, aux: [aux] }, targets);
    close(both.loss.item(), single + auxOnly, 1e-12);
    both.loss.backward();
    assert.ok(boxes.grad!.abs().sum().item() > 0);
    assert.ok(logits.grad!.abs().sum().item() > 0);
    const empty = detrSetLoss({ logits: t64(logitsArr), boxes: t64(boxesArr) }, [{ labels: [], boxes: [] }]);
    const row = logitsArr[0]!;
    const nll = (r: number[]): number => Math.log(r.reduce((s, x) => s + Math.exp(x), 0)) - r[2]!;
    close(empty.loss.item(), (nll(row[0]!) + nll(row[1]!) + nll(row[2]!)) / 3, 1e-12);
    assert.throws(() => detrSetLoss({ logits: t64(logitsArr), boxes: t64(boxesArr) }, [{ labels: [5], boxes: [[0.5, 0.5, 0.1, 0.1]] }]), /label 5, outside 0\.\.1/);
  });

  test('set-loss gradient w.r.t. boxes matches finite differences (fixed matching, float64)', () => {
    const logits = t64(logitsArr);
    const m = [{ queries: [1, 2], targets: [0, 1] }];
    // Away from the kinks of |·|, max and min (no coordinate equal to the target's).
    const boxes = t64([[[0.8, 0.8, 0.1, 0.1], [0.32, 0.28, 0.21, 0.18], [0.72, 0.26, 0.23, 0.31]]]).requiresGrad_();
    const r = gradcheck((b) => setLossGivenMatch({ logits, boxes: b }, targets, m).total, [boxes], { rtol: 1e-6 });
    assert.ok(r.ok, JSON.stringify(r));
  });
});

describe('COCO mAP fixtures (worked from COCOeval definitions)', () => {
  const gt = (imageId: number, category: number, box: [number, number, number, number]): GroundTruthBox => ({ imageId, category, box });
  const dt = (imageId: number, category: number, box: [number, number, number, number], score: number): DetectionBox => ({ imageId, category, box, score });

  test('thresholds are numpy.linspace(.5, .95, 10)', () => {
    assert.equal(COCO_IOU_THRESHOLDS.length, 10);
    close(COCO_IOU_THRESHOLDS[2]!, 0.6, 1e-15);
    assert.equal(COCO_IOU_THRESHOLDS[9], 0.95);
  });

  test('perfect detections → 1', () => {
    const g = [gt(0, 0, [0, 0, 10, 10]), gt(0, 1, [20, 20, 30, 35]), gt(1, 0, [5, 5, 9, 9])];
    const r = evaluateDetections(g, g.map((x, i) => ({ ...x, score: 0.9 - 0.1 * i })));
    close(r.map, 1, 1e-12);
    close(r.ap50, 1, 1e-12);
    r.perClass.forEach((c) => close(c.ap!, 1, 1e-12));
  });

  test('one false positive ranked first → 0.5 at every threshold', () => {
    // Precision [0, 0.5] at recall [0, 1] → monotone [0.5, 0.5]: every recall point reads 0.5.
    const r = evaluateDetections([gt(0, 0, [0, 0, 10, 10])], [dt(0, 0, [50, 50, 60, 60], 0.9), dt(0, 0, [0, 0, 10, 10], 0.8)]);
    close(r.map, 0.5, 1e-12);
    close(r.ap50, 0.5, 1e-12);
  });

  test('a box at IoU 0.6 counts at .50, .55, .60 only → mAP 0.3, AP50 1', () => {
    const r = evaluateDetections([gt(0, 0, [0, 0, 10, 10])], [dt(0, 0, [0, 0, 6, 10], 0.9)]);
    close(r.map, 0.3, 1e-12);
    close(r.ap50, 1, 1e-12);
    close(r.ap75, 0, 1e-12);
    assert.deepEqual(r.apPerThreshold.map((x) => +x.toFixed(9)), [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  });

  test('a duplicate detection is a false positive', () => {
    // Two objects; detections A (0.9), duplicate of A (0.8), B (0.7): TP, FP, TP →
    // recall [.5, .5, 1], precision [1, .5, 2/3] → monotone [1, 2/3, 2/3];
    // recall points 0..0.50 (51 of them) read 1, 0.51..1 (50) read 2/3 → AP = (51 + 50·2/3) / 101.
    const g = [gt(0, 0, [0, 0, 10, 10]), gt(0, 0, [20, 0, 30, 10])];
    const r = evaluateDetections(g, [dt(0, 0, [0, 0, 10, 10], 0.9), dt(0, 0, [0, 0, 10, 10], 0.8), dt(0, 0, [20, 0, 30, 10], 0.7)]);
    close(r.map, (51 + (50 * 2) / 3) / 101, 1e-12);
    // Without the duplicate: 1.
    close(evaluateDetections(g, [dt(0, 0, [0, 0, 10, 10], 0.9), dt(0, 0, [20, 0, 30, 10], 0.7)]).map, 1, 1e-12);
  });

  test('wrong class → 0 (the class without ground truth is left out)', () => {
    const r = evaluateDetections([gt(0, 0, [0, 0, 10, 10])], [dt(0, 1, [0, 0, 10, 10], 0.9)]);
    assert.equal(r.map, 0);
    assert.deepEqual(r.perClass.map((c) => [c.category, c.ap]), [[0, 0], [1, null]]);
  });

  test('a missed object: recall stops at 0.5 → 51/101', () => {
    const r = evaluateDetections([gt(0, 0, [0, 0, 10, 10]), gt(1, 0, [0, 0, 10, 10])], [dt(0, 0, [0, 0, 10, 10], 0.9)]);
    close(r.map, 51 / 101, 1e-12);
  });

  test('score ordering across images decides AP; maxDets truncates per image and class', () => {
    // Image 0: FP 0.95; image 1: TP 0.9 → FP ranked first: 0.5. Scores swapped → TP first: 1.
    const g = [gt(1, 0, [0, 0, 10, 10])];
    close(evaluateDetections(g, [dt(0, 0, [0, 0, 10, 10], 0.95), dt(1, 0, [0, 0, 10, 10], 0.9)]).map, 0.5, 1e-12);
    close(evaluateDetections(g, [dt(0, 0, [0, 0, 10, 10], 0.85), dt(1, 0, [0, 0, 10, 10], 0.9)]).map, 1, 1e-12);
    // maxDets 1: the TP scored below an FP in the same image is dropped → 0.
    const same = [dt(1, 0, [40, 40, 50, 50], 0.95), dt(1, 0, [0, 0, 10, 10], 0.9)];
    close(evaluateDetections(g, same, { maxDets: 1 }).map, 0, 1e-12);
    close(evaluateDetections(g, same).map, 0.5, 1e-12);
  });

  test('the detection takes the unmatched ground truth of highest IoU', () => {
    // Two overlapping objects; the first detection overlaps both (IoU 0.6 with gt B, ~0.538 with gt A,
    // so it must take B), the second sits exactly on A. With greedy-by-order matching to A first the
    // second detection would be an FP at every threshold.
    const A: [number, number, number, number] = [0, 0, 10, 10];
    const B: [number, number, number, number] = [2, 0, 12, 10];
    const d1: [number, number, number, number] = [2, 0, 8, 10];
    close(iouXyxy(d1, B), 0.6, 1e-12);
    const r = evaluateDetections([gt(0, 0, A), gt(0, 0, B)], [dt(0, 0, d1, 0.9), dt(0, 0, A, 0.8)]);
    close(r.ap50, 1, 1e-12);
  });
});

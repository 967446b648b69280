// Box formats, IoU and generalised IoU (Rezatofighi et al., CVPR 2019), differentiable where the DETR
// loss needs them. Formats, as DETR's util/box_ops.py:
//   cxcywh  centre x, centre y, width, height (what the detector's box head predicts, in [0, 1])
//   xyxy    left, top, right, bottom
//   xywh    left, top, width, height (COCO's `bbox`)
import { stack, tidy, type Tensor } from '../tensor/tensor.js';

/** [..., 4] cxcywh → xyxy. */
export function boxCxcywhToXyxy(b: Tensor): Tensor {
  return tidy(() => {
    const [cx, cy, w, h] = b.unbind(-1) as [Tensor, Tensor, Tensor, Tensor];
    return stack([cx.sub(w.mul(0.5)), cy.sub(h.mul(0.5)), cx.add(w.mul(0.5)), cy.add(h.mul(0.5))], -1);
  });
}

/** [..., 4] xyxy → cxcywh. */
export function boxXyxyToCxcywh(b: Tensor): Tensor {
  return tidy(() => {
    const [x0, y0, x1, y1] = b.unbind(-1) as [Tensor, Tensor, Tensor, Tensor];
    return stack([x0.add(x1).mul(0.5), y0.add(y1).mul(0.5), x1.sub(x0), y1.sub(y0)], -1);
  });
}

/** [..., 4] xyxy → [...] areas. */
export function boxArea(b: Tensor): Tensor {
  return tidy(() => {
    const [x0, y0, x1, y1] = b.unbind(-1) as [Tensor, Tensor, Tensor, Tensor];
    return x1.sub(x0).mul(y1.sub(y0));
  });
}

/**
 * IoU and union of xyxy boxes of broadcastable shapes [..., 4] (elementwise after broadcasting).
 * Boxes must be proper (x1 ≥ x0, y1 ≥ y0); as DETR, a zero union gives NaN, which never happens for
 * boxes of positive area.
 */
function iouParts(a: Tensor, b: Tensor): { iou: Tensor; union: Tensor } {
  return tidy(() => {
    const areaA = boxArea(a);
    const areaB = boxArea(b);
    const lt = a.narrow(-1, 0, 2).maximum(b.narrow(-1, 0, 2));
    const rb = a.narrow(-1, 2, 2).minimum(b.narrow(-1, 2, 2));
    const wh = rb.sub(lt).clampMin(0);
    const inter = wh.select(-1, 0).mul(wh.select(-1, 1));
    const union = areaA.add(areaB).sub(inter);
    return { iou: inter.div(union), union };
  });
}

function giouFrom(a: Tensor, b: Tensor): Tensor {
  return tidy(() => {
    const { iou, union } = iouParts(a, b);
    // The smallest enclosing box C: GIoU = IoU − |C \ (A ∪ B)| / |C|.
    const lt = a.narrow(-1, 0, 2).minimum(b.narrow(-1, 0, 2));
    const rb = a.narrow(-1, 2, 2).maximum(b.narrow(-1, 2, 2));
    const wh = rb.sub(lt).clampMin(0);
    const enclosing = wh.select(-1, 0).mul(wh.select(-1, 1));
    return iou.sub(enclosing.sub(union).div(enclosing));
  });
}

function checkBoxes(name: string, ...boxes: Tensor[]): void {
  for (const b of boxes) {
    if (b.ndim < 1 || b.size(-1) !== 4) throw new Error(`${name}: boxes must have shape [..., 4], got [${b.shape.join(', ')}]`);
  }
}

/** Pairwise IoU of xyxy boxes a [N, 4] and b [M, 4] → [N, M]. */
export function boxIou(a: Tensor, b: Tensor): Tensor {
  checkBoxes('boxIou', a, b);
  return tidy(() => iouParts(a.unsqueeze(1), b.unsqueeze(0)).iou);
}

/** Pairwise generalised IoU of xyxy boxes a [N, 4] and b [M, 4] → [N, M], in [−1, 1]. */
export function generalizedBoxIou(a: Tensor, b: Tensor): Tensor {
  checkBoxes('generalizedBoxIou', a, b);
  return tidy(() => giouFrom(a.unsqueeze(1), b.unsqueeze(0)));
}

/** IoU of matched pairs of xyxy boxes a [..., 4], b [..., 4] → [...]. */
export function pairedIou(a: Tensor, b: Tensor): Tensor {
  checkBoxes('pairedIou', a, b);
  return tidy(() => iouParts(a, b).iou);
}

/** Generalised IoU of matched pairs of xyxy boxes a [..., 4], b [..., 4] → [...]. */
export function pairedGiou(a: Tensor, b: Tensor): Tensor {
  checkBoxes('pairedGiou', a, b);
  return tidy(() => giouFrom(a, b));
}

// ---- plain-number boxes (evaluation, data) ---------------------------------------------------

/** A box as four numbers: xyxy unless named otherwise. */
export type Box4 = readonly [number, number, number, number];

/** IoU of two xyxy boxes (COCO's bbox IoU: no +1 on widths). 0 when the union is empty. */
export function iouXyxy(a: Box4, b: Box4): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

export const xywhToXyxy = (b: Box4): Box4 => [b[0], b[1], b[0] + b[2], b[1] + b[3]];
export const cxcywhToXyxy = (b: Box4): Box4 => [b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2];
export const xyxyToCxcywh = (b: Box4): Box4 => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]];

// Small shared pieces of the report layer that need no tensors (so charts and HTML load without
// the native addon).
import path from 'node:path';

/** Ten distinguishable colours (matplotlib's tab10), used for boxes and chart series. */
export const PALETTE: readonly string[] = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
];

/** Escapes text for XML/HTML text and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The sidecar file that describes a grid PNG's layout: `x.png` → `x.layout.json`. */
export function layoutPathFor(pngFile: string): string {
  const dir = path.dirname(pngFile);
  const base = path.basename(pngFile).replace(/\.png$/i, '');
  return path.join(dir, `${base}.layout.json`);
}

/** Minimum and maximum of numbers without spreading them as arguments (safe for long arrays). */
export function extent(values: Iterable<number>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

// Tiny dependency-free line charts as inline SVG strings (for report.html).
//
// Non-finite points (NaN, ±Infinity) are skipped. Long series are thinned to at most `maxPoints`
// per series by keeping, per horizontal pixel column, the first, lowest, highest and last point, so
// spikes stay visible. All text is XML-escaped.
import { escapeXml, extent, PALETTE } from './common.js';

export { escapeXml };

export type Point = readonly [number, number];

export interface Series {
  name: string;
  points: readonly Point[];
  /** CSS colour; default from a 10-colour palette by position. */
  color?: string;
  dashed?: boolean;
}

export interface LineChartOptions {
  series: readonly Series[];
  xLabel: string;
  yLabel: string;
  title: string;
  /** Fixed y axis range; points outside are clipped. Default: the data's range, rounded to ticks. */
  yRange?: readonly [number, number];
  /** Fixed x axis range. Default: the data's range. */
  xRange?: readonly [number, number];
  /** Pixel size; default 640 × 320. */
  width?: number;
  height?: number;
  /** Most points drawn per series; default 2000. */
  maxPoints?: number;
  /** Dot every point: default when a series has at most 40 points. */
  markers?: boolean;
}

/** Round numbers (1, 2 or 5 × 10^k apart) covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const step = niceStep((hi - lo) / Math.max(1, count));
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  const out: number[] = [];
  for (let k = first; k <= last && out.length < 1000; k++) out.push(roundTo(k * step, step));
  return out;
}

function niceStep(raw: number): number {
  const e = Math.floor(Math.log10(raw));
  const f = raw / 10 ** e;
  const m = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10; // the nearest of 1, 2, 5, 10
  return m * 10 ** e;
}

function roundTo(v: number, step: number): number {
  const d = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(v.toFixed(Math.min(20, d)));
}

/** A tick label: as many decimals as the tick step needs; k/M suffixes for large values. */
export function formatTick(v: number, step: number): string {
  const a = Math.abs(v);
  if (a >= 1e7 && step >= 1e5) return `${trimNum(v / 1e6, step / 1e6)}M`;
  if (a >= 1e4 && step >= 100) return `${trimNum(v / 1e3, step / 1e3)}k`;
  if (a !== 0 && a < 1e-4) return v.toExponential(1);
  return trimNum(v, step);
}

function trimNum(v: number, step: number): string {
  const d = step > 0 && Number.isFinite(step) ? Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9))) : 2;
  const s = v.toFixed(d);
  return s === '-0' || /^-0\.0*$/.test(s) ? s.slice(1) : s;
}

/** Short stable hash (FNV-1a) for element ids. */
function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(36);
}

const f1 = (v: number): string => {
  const s = v.toFixed(1);
  return s.endsWith('.0') ? s.slice(0, -2) : s;
};

function thin(points: Point[], toPx: (x: number) => number, maxPoints: number): Point[] {
  if (points.length <= maxPoints) return points;
  const out: Point[] = [];
  let i = 0;
  while (i < points.length) {
    const col = Math.floor(toPx(points[i]![0]));
    let j = i;
    let lo = i;
    let hi = i;
    while (j + 1 < points.length && Math.floor(toPx(points[j + 1]![0])) === col) {
      j++;
      if (points[j]![1] < points[lo]![1]) lo = j;
      if (points[j]![1] > points[hi]![1]) hi = j;
    }
    for (const k of [...new Set([i, lo, hi, j])].sort((a, b) => a - b)) out.push(points[k]!);
    i = j + 1;
  }
  return out;
}

/** An SVG line chart with axes, ticks, grid lines, a title and a legend. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 320;
  const series = o.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length]!,
    dashed: s.dashed ?? false,
    points: s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])) as Point[],
  }));

  // legend width from the longest name (about 6.6 px per character at 11 px)
  const names = series.map((s) => (s.name.length > 32 ? `${s.name.slice(0, 31)}…` : s.name));
  const legendW = series.length > 0 ? Math.min(240, 34 + Math.max(...names.map((n) => n.length)) * 6.6) : 0;
  const left = 62;
  const right = 14 + legendW;
  const top = 34;
  const bottom = 46;
  const pw = Math.max(40, W - left - right);
  const ph = Math.max(40, H - top - bottom);

  const all = series.flatMap((s) => s.points);
  let [x0, x1] = o.xRange ?? extent(all.map((p) => p[0])) ?? [0, 1];
  if (!(x1 > x0)) [x0, x1] = x0 === x1 && Number.isFinite(x0) ? [x0 - 0.5, x0 + 0.5] : [0, 1];
  let y0: number;
  let y1: number;
  if (o.yRange) {
    [y0, y1] = o.yRange;
    if (!(y1 > y0)) [y0, y1] = [y0 - 0.5, y0 + 0.5];
  } else {
    [y0, y1] = extent(all.map((p) => p[1])) ?? [0, 1];
    if (y1 === y0) {
      const d = Math.abs(y0) > 0 ? Math.abs(y0) * 0.1 : 1;
      y0 -= d;
      y1 += d;
    }
    // extend to the enclosing ticks
    const step = niceStep((y1 - y0) / 5);
    y0 = roundTo(Math.floor(y0 / step + 1e-9) * step, step);
    y1 = roundTo(Math.ceil(y1 / step - 1e-9) * step, step);
  }
  const sx = (x: number): number => left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => top + ph - ((y - y0) / (y1 - y0)) * ph;

  const parts: string[] = [];
  const clipId = `clip-${hash(JSON.stringify([o.title, W, H, x0, x1, y0, y1, series.map((s) => [s.name, s.points.length])]))}`;
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(o.title)}</title>`,
    `<defs><clipPath id="${clipId}"><rect x="${f1(left - 3)}" y="${f1(top - 3)}" width="${f1(pw + 6)}" height="${f1(ph + 6)}"/></clipPath></defs>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${f1(left + pw / 2)}" y="20" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`,
  );

  // grid and ticks
  const xTickCount = Math.max(2, Math.round(pw / 90));
  const xt = niceTicks(x0, x1, xTickCount);
  const xStep = xt.length > 1 ? xt[1]! - xt[0]! : Math.abs(x1 - x0) || 1;
  const yt = niceTicks(y0, y1, 5);
  const yStep = yt.length > 1 ? yt[1]! - yt[0]! : Math.abs(y1 - y0) || 1;
  const g: string[] = [];
  for (const v of yt) {
    const y = f1(sy(v));
    g.push(`<line x1="${f1(left)}" y1="${y}" x2="${f1(left + pw)}" y2="${y}" stroke="#e5e5e5"/>`);
    g.push(`<text x="${f1(left - 6)}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(v, yStep))}</text>`);
  }
  for (const v of xt) {
    const x = f1(sx(v));
    g.push(`<line x1="${x}" y1="${f1(top)}" x2="${x}" y2="${f1(top + ph)}" stroke="#f0f0f0"/>`);
    g.push(`<line x1="${x}" y1="${f1(top + ph)}" x2="${x}" y2="${f1(top + ph + 4)}" stroke="#333"/>`);
    g.push(`<text x="${x}" y="${f1(top + ph + 16)}" text-anchor="middle">${escapeXml(formatTick(v, xStep))}</text>`);
  }
  parts.push(`<g>${g.join('')}</g>`);
  // axes
  parts.push(
    `<path d="M${f1(left)} ${f1(top)}V${f1(top + ph)}H${f1(left + pw)}" fill="none" stroke="#333"/>`,
    `<text x="${f1(left + pw / 2)}" y="${f1(H - 8)}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
    `<text transform="translate(14 ${f1(top + ph / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );

  // data
  const maxPoints = Math.max(4, o.maxPoints ?? 2000);
  const lines: string[] = [];
  series.forEach((s) => {
    const pts = thin(s.points, sx, maxPoints);
    if (pts.length === 0) return;
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    if (pts.length > 1) {
      const d = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${f1(sx(p[0]))} ${f1(sy(p[1]))}`).join('');
      lines.push(`<path d="${d}" fill="none" stroke="${escapeXml(s.color)}" stroke-width="1.5" stroke-linejoin="round"${dash}/>`);
    }
    if (o.markers ?? pts.length <= 40) {
      for (const p of pts) lines.push(`<circle cx="${f1(sx(p[0]))}" cy="${f1(sy(p[1]))}" r="2.5" fill="${escapeXml(s.color)}"/>`);
    }
  });
  parts.push(`<g clip-path="url(#${clipId})">${lines.join('')}</g>`);
  if (all.length === 0) {
    parts.push(`<text x="${f1(left + pw / 2)}" y="${f1(top + ph / 2)}" text-anchor="middle" fill="#888">no data</text>`);
  }

  // legend
  const lg: string[] = [];
  series.forEach((s, i) => {
    const x = left + pw + 14;
    const y = top + 8 + i * 16;
    if (y > H - 6) return;
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    lg.push(`<line x1="${f1(x)}" y1="${f1(y)}" x2="${f1(x + 18)}" y2="${f1(y)}" stroke="${escapeXml(s.color)}" stroke-width="2"${dash}/>`);
    lg.push(`<text x="${f1(x + 24)}" y="${f1(y)}" dominant-baseline="middle">${escapeXml(names[i]!)}${s.points.length === 0 ? ' (no data)' : ''}</text>`);
  });
  parts.push(`<g>${lg.join('')}</g>`, '</svg>');
  return parts.join('\n');
}

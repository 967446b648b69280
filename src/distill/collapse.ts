// Collapse made visible (issues 15 and 19): what the teacher decides on each synthetic batch. A
// generator that collapses makes inputs the teacher reads as one or two classes (dafl on the LeNet-5
// pair at batch 128 went to chance this way: every sample one class, the student's KD loss → 0), or
// near-copies within a class. Per iteration, on the first SYNTH_PROBE (16) images of the batch:
//   synth/classes    how many classes the teacher's argmax covers,
//   synth/share_<c>  the share of class c (for ≤ 20 classes),
//   synth/diversity  within-class diversity: the mean pairwise cosine distance (1 − cos) between the
//                    teacher's penultimate features of samples the teacher puts in the same class,
//   synth/collapsed  1 when the batch covers ≤ COLLAPSE_MAX_CLASSES classes.
// The driver averages them over the iterations between two metrics rows (so a row's shares are the
// class distribution of the recent batches). They are computed from the batch alone (no state), so
// an exact --resume stays exact. The teacher runs in eval mode and draws no random numbers.
import { existsSync, readFileSync } from 'node:fs';
import { inferenceMode, tidy, type Tensor } from '../tensor/tensor.js';
import type { Classifier } from '../models/types.js';

/**
 * Images of each batch the teacher's decisions are read on (a forward of the teacher, no backward).
 * 16, not the whole batch: with the MNIST ViT teacher a probe of 64 cost 128 ms per iteration (~10%
 * of a tgan iteration; the 5-minute demo made 214 iterations instead of ~250), 16 cost 18 ms. Shares
 * and diversity are averaged over the iterations of a metrics row, and 16 samples of a healthy
 * 10-class batch practically never fall in ≤ 2 classes.
 */
export const SYNTH_PROBE = 16;
/** The guard: a batch the teacher reads as this many classes or fewer has collapsed (issue 19). */
export const COLLAPSE_MAX_CLASSES = 2;
/** Per-class shares are logged for up to this many classes (more would crowd metrics.jsonl). */
const MAX_SHARE_CLASSES = 20;

/** Mean pairwise cosine distance within classes, pairs of all classes pooled; NaN without a pair. */
export function withinClassDiversity(features: Float32Array, dim: number, labels: number[]): number {
  const n = labels.length;
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += features[i * dim + k]! ** 2;
    norms[i] = Math.sqrt(s) || 1;
  }
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (labels[i] !== labels[j]) continue;
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += features[i * dim + k]! * features[j * dim + k]!;
      sum += 1 - dot / (norms[i]! * norms[j]!);
      pairs++;
    }
  }
  return pairs > 0 ? sum / pairs : Number.NaN;
}

/** The synth/* figures of one synthetic batch x (normalised inputs) as the teacher sees them. */
export function synthesisFigures(teacher: Classifier, x: Tensor, numClasses: number): Record<string, number> {
  return tidy(() => {
    const n = Math.min(SYNTH_PROBE, x.shape[0]!);
    const { logits, feature } = inferenceMode(() => teacher.forward(x.narrow(0, 0, n)));
    const labels = logits.argmax(1).toArray() as number[];
    const counts = new Array<number>(numClasses).fill(0);
    for (const c of labels) counts[c]!++;
    const covered = counts.filter((c) => c > 0).length;
    const out: Record<string, number> = { 'synth/classes': covered, 'synth/collapsed': covered <= COLLAPSE_MAX_CLASSES && numClasses > COLLAPSE_MAX_CLASSES ? 1 : 0 };
    const d = withinClassDiversity(feature.contiguous().data() as Float32Array, feature.shape[1]!, labels);
    // NaN (no two samples share a class) must not read as a NaN loss: log 0 diversity then.
    out['synth/diversity'] = Number.isFinite(d) ? Math.max(0, d) : 0;
    if (numClasses <= MAX_SHARE_CLASSES) for (let c = 0; c < numClasses; c++) out[`synth/share_${c}`] = counts[c]! / n;
    return out;
  });
}

export interface CollapseSummary {
  /** Metrics rows in which at least half the batches had collapsed. */
  collapsed_rows: number;
  rows: number;
  /** The first such row's iteration, or null. */
  first_collapsed_iteration: number | null;
  /** The fewest classes (row average) the teacher saw in the synthetic batches. */
  min_classes: number | null;
  /** The last row's within-class diversity. */
  final_diversity: number | null;
}

/** The guard's verdict over a run's metrics.jsonl (rows written by the driver). */
export function collapseSummary(metricsFile: string): CollapseSummary {
  const rows = existsSync(metricsFile)
    ? readFileSync(metricsFile, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, number>)
    : [];
  const withSynth = rows.filter((r) => r['synth/classes'] !== undefined);
  const collapsed = withSynth.filter((r) => r['synth/collapsed']! >= 0.5);
  return {
    collapsed_rows: collapsed.length,
    rows: withSynth.length,
    first_collapsed_iteration: collapsed[0]?.iteration ?? null,
    min_classes: withSynth.length > 0 ? Math.min(...withSynth.map((r) => r['synth/classes']!)) : null,
    final_diversity: withSynth.length > 0 ? withSynth[withSynth.length - 1]!['synth/diversity']! : null,
  };
}

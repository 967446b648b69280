// Student initialisation from the teacher's weights alone — data-free by construction.
//
// Weight selection (Xu et al., "Initializing Models with Larger Ones", ICLR 2024): a smaller model of
// the same family starts from a subset of the larger one's weights. Layers: the first N blocks of the
// teacher for a student of depth N ("first-N" selection). Within a tensor: along every dimension where
// the sizes differ, evenly spaced indices (⌊i·T/S⌋, "uniform" selection), the same indices for every
// tensor that shares that dimension — so the rows a layer keeps are the columns the next layer reads.
// For a ViT whose width halves (96 → 48) this keeps the even channels everywhere; fused q|k|v weights
// are selected per chunk so q, k and v keep the same channels. A distilled DeiT teacher's position
// embedding loses its distillation-token row for a student without that token.
//
// The paper reports that it speeds up and improves the training of small ViTs (ViT-T from ViT-S) on
// small datasets; here it gives a data-free student the teacher's patch embedding and attention
// structure to start from. Heads do not map one-to-one when the head count differs (the student's
// heads each see a slice of several teacher heads): this is an initialisation, not a copy.
import { cat, noGrad, tensor, type Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';

export interface SelectionReport {
  /** Student tensors initialised from the teacher (name → teacher name). */
  selected: Record<string, string>;
  /** Student tensors left at their random initialisation, with the reason. */
  kept: Record<string, string>;
}

/** Evenly spaced indices: S of T. */
export function uniformIndices(T: number, S: number): number[] {
  if (S > T) throw new Error(`weight selection: cannot select ${S} of ${T}`);
  return Array.from({ length: S }, (_, i) => Math.floor((i * T) / S));
}

function selectAlong(t: Tensor, dim: number, size: number, chunks = 1): Tensor {
  const T = t.size(dim);
  if (T === size) return t;
  if (T % chunks !== 0 || size % chunks !== 0) throw new Error(`weight selection: ${T} → ${size} in ${chunks} chunks`);
  const idx = uniformIndices(T / chunks, size / chunks);
  const all: number[] = [];
  for (let c = 0; c < chunks; c++) for (const i of idx) all.push(c * (T / chunks) + i);
  const index = tensor(all, { dtype: 'int64', device: t.device });
  const out = t.indexSelect(dim, index);
  index.dispose();
  return out;
}

/** Why the student tensor `s` cannot be selected from the teacher's `t` (null when it can). */
function selectionProblem(t: Tensor | undefined, s: Tensor): string | null {
  if (!t) return 'not in the teacher';
  if (t.ndim !== s.ndim) return `rank ${t.ndim} vs ${s.ndim}`;
  if (t.shape.some((d, i) => d < s.shape[i]!)) return `teacher [${t.shape.join(', ')}] is smaller than student [${s.shape.join(', ')}]`;
  return null;
}

/** Whether every student tensor has a same-named teacher tensor of the same rank and at least its size. */
export function canSelectWeights(teacher: Module, student: Module): boolean {
  const tp = new Map(teacher.namedParameters());
  return student.namedParameters().every(([name, s]) => selectionProblem(tp.get(name), s) === null);
}

/**
 * Copies into `student` the uniformly selected sub-tensors of `teacher`'s parameters with the same
 * names (block indices beyond the student's depth are not used). Tensors whose rank differs, or that
 * the student has and the teacher does not (e.g. a head of another class count), keep their init.
 */
export function selectWeights(teacher: Module, student: Module): SelectionReport {
  const tp = new Map(teacher.namedParameters());
  const report: SelectionReport = { selected: {}, kept: {} };
  const studentNames = new Set(student.namedParameters().map(([n]) => n));
  noGrad(() => {
    for (const [name, s] of student.namedParameters()) {
      const t = tp.get(name);
      const problem = selectionProblem(t, s);
      if (problem !== null || !t) {
        report.kept[name] = problem ?? 'not in the teacher';
        continue;
      }
      // q|k|v fused along dim 0: select inside each of the three chunks.
      const fused = /\.qkv\.(weight|bias)$/.test(name) ? 3 : 1;
      let v = t;
      const made: Tensor[] = [];
      if (name === 'pos_embed' && tp.has('dist_token') && !studentNames.has('dist_token')) {
        // A distilled DeiT's tokens are [cls, dist, patches…]; a student without the distillation
        // token takes the class token's and the patches' embeddings, not an evenly spaced subset.
        v = cat([t.narrow(1, 0, 1), t.narrow(1, 2, t.size(1) - 2)], 1);
        made.push(v);
      }
      for (let d = 0; d < s.ndim; d++) {
        const next = selectAlong(v, d, s.shape[d]!, d === 0 ? fused : 1);
        if (next !== v) made.push(next);
        v = next;
      }
      s.copy_(v);
      for (const m of made) m.dispose();
      report.selected[name] = name;
    }
  });
  return report;
}

// Running exported models in ONNX Runtime (onnxruntime-node, CPU) and checking them against the
// libtorch model: output parity on real images, and accuracy through ONNX Runtime.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { inferenceMode, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import type { DetectionDataset } from '../data/detection.js';
import { mapOf, postprocess, type Prediction } from '../detect/evaluate.js';
import { normalize } from '../data/augment.js';
import type { ImageDataset } from '../data/types.js';
import type { Classifier } from '../models/types.js';
import { decodeModel, metadataOf } from './onnx-graph.js';

type Ort = typeof import('onnxruntime-node');
let ortModule: Ort | null = null;

/** onnxruntime-node, loaded on first use (its native library is ~30 MB). */
export async function ort(): Promise<Ort> {
  if (!ortModule) {
    const m = (await import('onnxruntime-node')) as Ort & { default?: Ort };
    ortModule = m.InferenceSession ? m : m.default!;
  }
  return ortModule;
}

export type OrtOptimization = 'disabled' | 'basic' | 'extended' | 'all';

/**
 * The session options dfkd export's check and bench infer run with. Graph optimisation 'all' (ORT's
 * default) was the fastest level for the ViT teacher and students, measured in alternating rounds
 * (1 thread, batch 1): the exported graph's MatMul + Add pairs on token rows become Gemm (basic),
 * the erf GELU becomes Gelu, q·kᵀ with its scale FusedMatMul, the transposes are merged (extended),
 * the patch Conv runs in the NCHWc layout (all). Batch 1, vit-teacher-28 / vit-student-28 /
 * vit-student-28-fast: 'extended' 0.5 / 1.3 / 0.6% slower than 'all', 'basic' 5.5 / 7 / 8%,
 * 'disabled' 2.7 / 3.5 / 16%. The CPU arena, memory patterns and spinning made no measurable
 * difference with one thread.
 */
export const ORT_SESSION_DEFAULTS = { threads: 1, interOpThreads: 1, executionMode: 'sequential', optimization: 'all' } as const;

export interface OrtOptions {
  /** Intra-op threads (default 1). */
  threads?: number;
  /** Graph optimisations (default 'all', ONNX Runtime's default; ORT_SESSION_DEFAULTS). */
  optimization?: OrtOptimization;
}

/** What a session was created with, as recorded in dfkd export's report and the bench results. */
export function ortSessionRecord(o: OrtOptions = {}): { intra_op_threads: number; inter_op_threads: number; execution_mode: string; graph_optimization: OrtOptimization } {
  return {
    intra_op_threads: o.threads ?? ORT_SESSION_DEFAULTS.threads, inter_op_threads: ORT_SESSION_DEFAULTS.interOpThreads,
    execution_mode: ORT_SESSION_DEFAULTS.executionMode, graph_optimization: o.optimization ?? ORT_SESSION_DEFAULTS.optimization,
  };
}

/**
 * The nodes ONNX Runtime runs after its graph optimisations (the optimised model it writes, counted
 * by operator; domains prefixed, e.g. 'com.microsoft:Gelu').
 */
export async function ortOptimizedNodes(bytes: Uint8Array, optimization: OrtOptimization = ORT_SESSION_DEFAULTS.optimization): Promise<{ nodes: number; ops: Record<string, number> }> {
  const O = await ort();
  const dir = mkdtempSync(join(tmpdir(), 'dfkd-ort-'));
  const path = join(dir, 'optimized.onnx');
  try {
    // 'all' adds layout transforms specific to this CPU; ORT warns when it writes them: keep the log quiet.
    const s = await O.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: optimization, optimizedModelFilePath: path, logSeverityLevel: 3 });
    await s.release();
    const ops: Record<string, number> = {};
    const nodes = decodeModel(readFileSync(path)).graph?.node ?? [];
    for (const n of nodes) {
      const k = n.domain ? `${n.domain}:${n.opType}` : n.opType!;
      ops[k] = (ops[k] ?? 0) + 1;
    }
    return { nodes: nodes.length, ops };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An ONNX Runtime session over a file or bytes, with the model's vit-dfkd metadata. */
export interface LoadedOnnx {
  session: InferenceSession;
  metadata: Record<string, string>;
  /** [C, H, W] from the metadata. */
  inputShape: [number, number, number];
  /** The input's batch dimension: a number when fixed, null when dynamic. */
  fixedBatch: number | null;
  /** 'folded': feed [0, 1] pixels; 'external': feed (x − mean) / std. */
  normalization: 'folded' | 'external';
  mean: number[];
  std: number[];
  classes: string[];
}

function parseJson<T>(meta: Record<string, string>, key: string, file: string): T {
  const raw = meta[key];
  if (raw === undefined) throw new Error(`${file}: no '${key}' in the model's metadata (not exported by dfkd export?)`);
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new Error(`${file}: metadata '${key}' is not JSON: ${raw}`);
  }
}

export async function loadOnnx(source: string | Uint8Array, o: OrtOptions = {}): Promise<LoadedOnnx> {
  const name = typeof source === 'string' ? source : '<bytes>';
  const bytes = typeof source === 'string' ? readFileSync(source) : source;
  const proto = decodeModel(bytes);
  const metadata = metadataOf(proto);
  const O = await ort();
  const session = await O.InferenceSession.create(bytes, {
    intraOpNumThreads: o.threads ?? ORT_SESSION_DEFAULTS.threads,
    interOpNumThreads: ORT_SESSION_DEFAULTS.interOpThreads,
    executionMode: ORT_SESSION_DEFAULTS.executionMode,
    graphOptimizationLevel: o.optimization ?? ORT_SESSION_DEFAULTS.optimization,
  });
  const dim0 = proto.graph?.input?.[0]?.type?.tensorType?.shape?.dim?.[0];
  const fixedBatch = dim0 && !dim0.dimParam && Number(dim0.dimValue) > 0 ? Number(dim0.dimValue) : null;
  const norm = metadata['vit_dfkd.normalization'];
  return {
    session, metadata, fixedBatch,
    inputShape: parseJson<[number, number, number]>(metadata, 'vit_dfkd.input_shape', name),
    normalization: norm === 'external' ? 'external' : 'folded',
    mean: parseJson<number[]>(metadata, 'vit_dfkd.mean', name),
    std: parseJson<number[]>(metadata, 'vit_dfkd.std', name),
    classes: parseJson<string[]>(metadata, 'vit_dfkd.classes', name),
  };
}

/**
 * Runs `images` ([N, C, H, W] pixels in [0, 1]) through the session in batches of `batch` (the fixed
 * batch of the file when it has one; the last batch is zero-padded then). Returns every output,
 * concatenated over the images, as float32 arrays with their per-image size.
 */
export async function runOnnx(m: LoadedOnnx, images: Tensor, batch = 256): Promise<Record<string, { data: Float32Array; perImage: number }>> {
  const O = await ort();
  const [n, c, h, w] = images.shape as [number, number, number, number];
  const [ec, eh, ew] = m.inputShape;
  if (c !== ec || h !== eh || w !== ew) throw new Error(`ONNX model expects images [${m.inputShape.join(', ')}], got [${[c, h, w].join(', ')}]`);
  const bs = m.fixedBatch ?? Math.max(1, Math.min(batch, n));
  const per = c * h * w;
  const out: Record<string, { chunks: Float32Array[]; perImage: number }> = {};
  for (let s = 0; s < n; s += bs) {
    const k = Math.min(bs, n - s);
    const x = tidy(() => {
      const chunk = images.narrow(0, s, k);
      return (m.normalization === 'external' ? normalize(chunk, m.mean, m.std) : chunk.contiguous()).data() as Float32Array;
    });
    const input = new Float32Array(bs * per);
    input.set(x);
    const results = await m.session.run({ [m.session.inputNames[0]!]: new O.Tensor('float32', m.fixedBatch ? input : input.subarray(0, k * per), [m.fixedBatch ? bs : k, c, h, w]) });
    for (const [name, t] of Object.entries(results)) {
      const data = t.data as Float32Array;
      const perImage = data.length / t.dims[0]!;
      (out[name] ??= { chunks: [], perImage }).chunks.push(data.slice(0, k * perImage));
      t.dispose?.();
    }
  }
  return Object.fromEntries(
    Object.entries(out).map(([name, { chunks, perImage }]) => {
      const all = new Float32Array(n * perImage);
      let off = 0;
      for (const ch of chunks) {
        all.set(ch, off);
        off += ch.length;
      }
      return [name, { data: all, perImage }];
    }),
  );
}

function argmaxRows(data: Float32Array | number[], k: number): number[] {
  const n = data.length / k;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (data[i * k + j]! > data[i * k + best]!) best = j;
    out[i] = best;
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: ${a.length} vs ${b.length} values`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

export interface ParityResult {
  images: number;
  /** max |ONNX Runtime − libtorch| over every logit. */
  maxAbsLogits: number;
  /** The same for the ViT's class-attention output, when the file has it. */
  maxAbsAttention?: number;
  /** Images whose predicted class differs between the two. */
  argmaxDisagreements: number;
}

/**
 * Output parity of an exported classifier against its libtorch model on `images` ([N, C, H, W]
 * pixels in [0, 1]; the libtorch side gets (x − mean) / std as vit-dfkd feeds it).
 */
export async function classifierParity(model: Classifier, m: LoadedOnnx, images: Tensor): Promise<ParityResult> {
  const outs = await runOnnx(m, images);
  const withAttention = 'attention' in outs;
  const ref = inferenceMode(() =>
    tidy(() => {
      const r = model.forward(normalize(images, m.mean, m.std), { returnAttention: withAttention }) as ReturnType<Classifier['forward']> & { attentions?: Tensor[]; numPrefix?: number };
      const logits = r.logits.contiguous().data() as Float32Array;
      let attention: Float32Array | undefined;
      if (withAttention && r.attentions) {
        const last = r.attentions[r.attentions.length - 1]!;
        const grid = outs.attention!.perImage;
        attention = last.select(2, 0).mean(1).narrow(1, r.numPrefix ?? 1, grid).contiguous().data() as Float32Array;
      }
      return { logits, attention };
    }),
  );
  const k = model.numClasses;
  const a = argmaxRows(outs.logits!.data, k);
  const b = argmaxRows(ref.logits, k);
  const result: ParityResult = {
    images: images.size(0),
    maxAbsLogits: maxAbsDiff(outs.logits!.data, ref.logits),
    argmaxDisagreements: a.filter((v, i) => v !== b[i]).length,
  };
  if (withAttention && ref.attention) result.maxAbsAttention = maxAbsDiff(outs.attention!.data, ref.attention);
  return result;
}

export interface OnnxEvalResult {
  accuracy: number;
  correct: number;
  total: number;
  predictions: number[];
}

/** Accuracy of an exported classifier on a labelled split, computed entirely in ONNX Runtime. */
export async function evaluateOnnx(m: LoadedOnnx, data: ImageDataset, o: { batch?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<OnnxEvalResult> {
  const n = data.labels.size(0);
  const labels = data.labels.toArray();
  const predictions: number[] = [];
  const step = o.batch ?? 250;
  for (let s = 0; s < n; s += step) {
    const k = Math.min(step, n - s);
    const chunk = data.images.narrow(0, s, k);
    const outs = await runOnnx(m, chunk, step);
    chunk.dispose();
    predictions.push(...argmaxRows(outs.logits!.data, outs.logits!.perImage));
    o.onProgress?.(s + k, n);
  }
  const correct = predictions.filter((p, i) => p === labels[i]).length;
  return { accuracy: correct / n, correct, total: n, predictions };
}

/** The argmax class of every row of libtorch logits (for comparing predictions with ONNX Runtime's). */
export function torchPredictions(model: Classifier, data: ImageDataset, batch = 500): number[] {
  const n = data.labels.size(0);
  const out: number[] = [];
  inferenceMode(() => {
    for (let s = 0; s < n; s += batch) {
      const k = Math.min(batch, n - s);
      const logits = tidy(() => model.forward(normalize(data.images.narrow(0, s, k), data.mean, data.std)).logits.contiguous().data() as Float32Array);
      out.push(...argmaxRows(logits, model.numClasses));
    }
  });
  return out;
}

export interface DetectorParityResult {
  images: number;
  maxAbsLogits: number;
  maxAbsBoxes: number;
}

/** Output parity of an exported DETR against its libtorch model on `images` ([N, C, H, W] in [0, 1]). */
export async function detectorParity(model: { forward(x: Tensor): { logits: Tensor; boxes: Tensor } }, m: LoadedOnnx, images: Tensor): Promise<DetectorParityResult> {
  const outs = await runOnnx(m, images);
  const ref = inferenceMode(() =>
    tidy(() => {
      const r = model.forward(normalize(images, m.mean, m.std));
      return { logits: r.logits.contiguous().data() as Float32Array, boxes: r.boxes.contiguous().data() as Float32Array };
    }),
  );
  return { images: images.size(0), maxAbsLogits: maxAbsDiff(outs.logits!.data, ref.logits), maxAbsBoxes: maxAbsDiff(outs.boxes!.data, ref.boxes) };
}

export interface OnnxDetectorEval {
  /** COCO mAP@[.5:.95], AP50 computed from ONNX Runtime's outputs with vit-dfkd's post-processing. */
  map: number;
  ap50: number;
  images: number;
  predictions: Prediction[][];
}

/**
 * mAP of an exported DETR on a labelled detection set, its logits and boxes computed entirely in
 * ONNX Runtime, then DETR's post-processing and the COCO evaluation of src/detect (the same code
 * `dfkd eval` runs on the libtorch model's outputs).
 */
export async function evaluateOnnxDetector(m: LoadedOnnx, data: Pick<DetectionDataset, 'images' | 'targets' | 'numClasses'>, o: { batch?: number } = {}): Promise<OnnxDetectorEval> {
  const outs = await runOnnx(m, data.images, o.batch ?? 250);
  const n = data.images.size(0);
  const logitsPer = outs.logits!.perImage;
  const Q = outs.boxes!.perImage / 4;
  const predictions = tidy(() => postprocess(
    tensor(outs.logits!.data, { shape: [n, Q, logitsPer / Q] }),
    tensor(outs.boxes!.data, { shape: [n, Q, 4] }),
  ));
  const r = mapOf(predictions, data.targets, data.numClasses);
  return { map: r.map, ap50: r.ap50, images: n, predictions };
}

// bench infer: what the compression buys a user who deploys with ONNX Runtime. Teacher vs student
// (vit-teacher-28 vs vit-student-28 and the latency preset vit-student-28-fast — one teacher row for
// both —, lenet5-28 vs lenet5-half-28), each exported by dfkd export's code (dynamic batch,
// normalisation folded in, the ViT's attention output included, ViT graph layout 'rows') and run in
// onnxruntime-node on the CPU with dfkd export's session options (ORT_SESSION_DEFAULTS: graph
// optimisation 'all', the fastest level measured; recorded in the result's config, --ort-optimization
// to compare another): batch 1 and 32, p50 / p95 latency per call, throughput, parameters, file size,
// nodes in the file and after ORT's optimisations, and test accuracy through ONNX Runtime for trained
// models. Teacher and students are timed in alternating rounds on the same random input, so load on
// this shared machine hits all of them.
// Each student also gets an int8 row (dfkd export --quantize int8's quantiser, calibrated on synthetic
// images of the student's own run; an untrained preset on uniform noise): the float student's test_acc,
// test_acc_int8, latency and size beside it.
import { existsSync } from 'node:fs';
import { manualSeed, rand } from '../src/tensor/tensor.js';
import { createModel } from '../src/models/registry.js';
import { loadClassifier, type ModelCard } from '../src/models/load.js';
import { countFlops } from '../src/models/flops.js';
import type { Classifier } from '../src/models/types.js';
import { loadMnist } from '../src/data/mnist.js';
import { classifierToOnnx } from '../src/export/onnx.js';
import { decodeModel } from '../src/export/onnx-graph.js';
import { evaluateOnnx, loadOnnx, ort, ortOptimizedNodes, ortSessionRecord, type LoadedOnnx, type OrtOptimization } from '../src/export/ort.js';
import { writeFileAtomic } from '../src/util/fs.js';
import { quantizeOnnxInt8 } from '../src/export/quantize.js';
import { runFolderOf, syntheticCalibrationSet } from '../src/export/calibration.js';
import { quantile, median, report } from './common.js';

export interface InferPair {
  name: string;
  /** A run folder / checkpoint, or a preset name (then randomly initialised: latency only). */
  teacher: string;
  student: string;
}

export interface InferOptions {
  pairs: InferPair[];
  batches: number[];
  /** ONNX Runtime intra-op threads. */
  threads: number;
  /** ONNX Runtime graph optimisation level (default ORT_SESSION_DEFAULTS': 'all', the fastest measured). */
  optimization?: OrtOptimization;
  rounds: number;
  /** Timed calls per model, batch size and round (scaled down for large batches). */
  callsBatch1: number;
  callsLarge: number;
  warmup: number;
  tiny?: boolean;
  /** An int8 row beside each student (dfkd export --quantize int8's quantiser; default true). */
  int8?: boolean;
  /** Per pair name: the run whose generator calibrates the int8 student (default: the student's own run). */
  calibrateFrom?: Record<string, string>;
}

interface Entry {
  pair: string;
  role: 'teacher' | 'student' | 'student-int8';
  /** The teacher's index in the entry list (speed-up and retention are against it). */
  teacherIndex: number;
  /** int8 rows: the float student's index, and where the calibration images came from. */
  floatIndex?: number;
  calibration?: string;
  source: string;
  preset: string;
  model: Classifier;
  loaded: LoadedOnnx;
  bytes: number;
  /** Nodes in the exported file, and those ONNX Runtime runs after its graph optimisations. */
  nodes: number;
  ortNodes: number;
  params: number;
  mflops: number;
  accuracy: number | null;
}

async function prepare(pair: string, role: 'teacher' | 'student', source: string, threads: number, optimization: OrtOptimization | undefined, test: ReturnType<typeof loadMnist> | null, teacherIndex: number): Promise<Entry & { floatBytes: Uint8Array }> {
  let model: Classifier;
  let card: Pick<ModelCard, 'preset' | 'classNames' | 'mean' | 'std' | 'dataset'>;
  let trained = false;
  if (existsSync(source)) {
    ({ model, card } = loadClassifier(source));
    trained = true;
  } else {
    manualSeed(0);
    model = createModel(source);
    model.eval();
    card = { preset: source, classNames: Array.from({ length: model.numClasses }, (_, i) => String(i)), mean: [0.1307], std: [0.3081], dataset: 'mnist' };
  }
  const { bytes, info } = classifierToOnnx(model, card, { dynamicBatch: true });
  const loaded = await loadOnnx(bytes, { threads, optimization });
  const accuracy = trained && test && card.dataset === 'mnist' ? (await evaluateOnnx(loaded, test)).accuracy : null;
  const ortNodes = (await ortOptimizedNodes(bytes, optimization)).nodes;
  return {
    pair, role, teacherIndex, source, preset: card.preset, model, loaded, bytes: bytes.length, floatBytes: bytes, nodes: info.nodes, ortNodes,
    params: model.numParameters(), mflops: countFlops(model).flops / 1e6, accuracy,
  };
}

/**
 * The int8 student: calibrated on synthetic images of its run (or `calibrateFrom`); a randomly
 * initialised preset (latency only) is calibrated on uniform noise — never on real images.
 */
async function prepareInt8(f: Entry & { floatBytes: Uint8Array }, floatIndex: number, threads: number, optimization: OrtOptimization | undefined, test: ReturnType<typeof loadMnist> | null, calibrateFrom?: string): Promise<Entry> {
  const run = calibrateFrom ?? (existsSync(f.source) ? runFolderOf(f.source) : null);
  let images;
  let calibration: string;
  if (run) {
    const cal = syntheticCalibrationSet(run, { count: 256 });
    images = cal.images;
    calibration = `${cal.source.images} synthetic images of ${run} (${cal.source.method})`;
  } else {
    if (f.accuracy !== null) throw new Error(`bench infer: the trained student ${f.source} is not in a distillation run; it has no generator to calibrate the int8 row from`);
    manualSeed(0);
    images = rand([64, ...f.model.inputShape]);
    calibration = 'uniform noise (untrained preset: latency and size only)';
  }
  const q = await quantizeOnnxInt8(f.floatBytes, images);
  images.dispose();
  const loaded = await loadOnnx(q.bytes, { threads, optimization });
  const accuracy = f.accuracy !== null && test ? (await evaluateOnnx(loaded, test)).accuracy : null;
  const nodes = decodeModel(q.bytes).graph?.node?.length ?? 0;
  const ortNodes = (await ortOptimizedNodes(q.bytes, optimization)).nodes;
  return { ...f, role: 'student-int8', floatIndex, calibration, loaded, bytes: q.bytes.length, nodes, ortNodes, accuracy };
}

export async function benchInfer(o: InferOptions): Promise<string> {
  const O = await ort();
  const test = loadMnist('test');
  const entries: Entry[] = [];
  for (const p of o.pairs) {
    // a pair whose teacher an earlier pair already has (another student of the same teacher) shares its row
    let t = entries.findIndex((e) => e.role === 'teacher' && e.source === p.teacher);
    if (t < 0) {
      t = entries.length;
      entries.push(await prepare(p.name, 'teacher', p.teacher, o.threads, o.optimization, test, t));
    }
    const student = await prepare(p.name, 'student', p.student, o.threads, o.optimization, test, t);
    entries.push(student);
    if (o.int8 ?? true) entries.push(await prepareInt8(student, entries.length - 1, o.threads, o.optimization, test, o.calibrateFrom?.[p.name]));
  }
  const times = new Map<string, number[]>(); // `${index}@${batch}` → ms per call
  for (const batch of o.batches) {
    const calls = batch === 1 ? o.callsBatch1 : o.callsLarge;
    const inputs = new Map<Entry, import('onnxruntime-node').Tensor>();
    for (const e of entries) {
      const x = rand([batch, ...e.model.inputShape]);
      inputs.set(e, new O.Tensor('float32', x.data() as Float32Array, [batch, ...e.model.inputShape]));
      x.dispose();
      for (let i = 0; i < o.warmup; i++) await e.loaded.session.run({ input: inputs.get(e)! });
    }
    for (let r = 0; r < o.rounds; r++) {
      // alternate teacher / student (and pairs) within every round
      for (const [i, e] of entries.entries()) {
        const key = `${i}@${batch}`;
        const list = times.get(key) ?? [];
        for (let c = 0; c < calls; c++) {
          const t0 = performance.now();
          await e.loaded.session.run({ input: inputs.get(e)! });
          list.push(performance.now() - t0);
        }
        times.set(key, list);
      }
      process.stderr.write(`batch ${batch}: round ${r + 1}/${o.rounds}\n`);
    }
  }
  const rows: Record<string, unknown>[] = [];
  for (const batch of o.batches) {
    for (const [i, e] of entries.entries()) {
      const t = times.get(`${i}@${batch}`)!;
      const p50 = median(t);
      const tp50 = median(times.get(`${e.teacherIndex}@${batch}`)!);
      const teacher = entries[e.teacherIndex]!;
      const row: Record<string, unknown> = {
        pair: e.pair, role: e.role, model: e.preset, batch,
        p50_ms: p50, p95_ms: quantile(t, 0.95), throughput: (batch * 1000) / p50,
        speedup_vs_teacher: tp50 / p50,
        params: e.params, mflops: e.mflops, bytes: e.bytes, onnx_nodes: e.nodes, ort_nodes: e.ortNodes,
        test_acc: e.accuracy, retention: e.accuracy !== null && teacher.accuracy ? e.accuracy / teacher.accuracy : null,
        calls: t.length,
      };
      if (e.floatIndex !== undefined) {
        // int8 rows: test_acc is the float student's, test_acc_int8 this file's (issue 18's columns)
        const f = entries[e.floatIndex]!;
        Object.assign(row, {
          test_acc: f.accuracy, test_acc_int8: e.accuracy, int8_vs_float: e.accuracy !== null && f.accuracy ? e.accuracy / f.accuracy : null,
          retention: e.accuracy !== null && teacher.accuracy ? e.accuracy / teacher.accuracy : null,
          speedup_vs_float: median(times.get(`${e.floatIndex}@${batch}`)!) / p50, size_ratio_vs_float: f.bytes / e.bytes, calibration: e.calibration,
        });
      }
      rows.push(row);
    }
  }
  for (const e of entries) await e.loaded.session.release();
  const name = o.tiny ? 'infer-tiny' : 'infer';
  const session = ortSessionRecord({ threads: o.threads, optimization: o.optimization });
  const file = report({
    name,
    config: {
      runtime: `onnxruntime-node ${O.env.versions.node ?? ''} (CPU execution provider)`,
      // the session options of every row (dfkd export's ORT check uses the same: ORT_SESSION_DEFAULTS)
      ...session, batches: o.batches, rounds: o.rounds, calls_batch1: o.callsBatch1, calls_large: o.callsLarge, warmup: o.warmup,
      export: "dfkd export defaults: opset 17, dynamic batch, normalisation folded in, ViT attention output included, ViT graph layout 'rows'",
      models: entries.map((e) => ({ pair: e.pair, role: e.role, source: e.source, trained: e.accuracy !== null })),
      test_set: 'MNIST test split (1,005 images), accuracy computed in ONNX Runtime',
    },
    results: rows,
    // BENCHMARKS.md: speed-up of each student over its teacher (p50 ratio), per batch size
    summary: Object.fromEntries(o.batches.map((b) => [`speedup_batch${b}`, Object.fromEntries(o.pairs.map((p) => [
      p.name, rows.find((x) => x.pair === p.name && x.role === 'student' && x.batch === b)!.speedup_vs_teacher,
    ]))])),
    ...((o.int8 ?? true) ? {
      int8: Object.fromEntries(o.pairs.map((p) => {
        const r = rows.find((x) => x.pair === p.name && x.role === 'student-int8' && x.batch === o.batches[0])!;
        return [p.name, { test_acc: r.test_acc, test_acc_int8: r.test_acc_int8, int8_vs_float: r.int8_vs_float, size_ratio_vs_float: r.size_ratio_vs_float, calibration: r.calibration }];
      })),
    } : {}),
  });
  writeFileAtomic(file.replace(/\.json$/, '.md'), markdown(rows, o.threads, session.graph_optimization));
  return file;
}

/** The README table. */
export function markdown(rows: Record<string, unknown>[], threads: number, optimization = 'all'): string {
  const f = (v: unknown, d = 2): string => (typeof v === 'number' ? v.toFixed(d) : '—');
  const pct = (v: unknown): string => (typeof v === 'number' ? `${(100 * v).toFixed(2)}%` : '—');
  const lines = [
    `| model | role | batch | p50 ms | p95 ms | images/s | speed-up | params | MFLOPs | .onnx KiB | test acc (ORT) | int8 test acc | retention |`,
    `|---|---|---|---|---|---|---|---|---|---|---|---|---|`,
  ];
  for (const r of rows) {
    const student = r.role !== 'teacher';
    const int8 = r.role === 'student-int8';
    lines.push(`| \`${String(r.model)}\` | ${int8 ? 'student int8' : String(r.role)} | ${String(r.batch)} | ${f(r.p50_ms, 3)} | ${f(r.p95_ms, 3)} | ${f(r.throughput, 0)} | ${student ? `${f(r.speedup_vs_teacher, 2)}×` : '1×'} | ${(r.params as number).toLocaleString('en-US')} | ${f(r.mflops, 1)} | ${f((r.bytes as number) / 1024, 1)}${int8 ? ` (${f(r.size_ratio_vs_float, 2)}× smaller)` : ''} | ${pct(r.test_acc)} | ${int8 ? `${pct(r.test_acc_int8)} (${pct(r.int8_vs_float)} of float)` : ''} | ${student ? pct(r.retention) : ''} |`);
  }
  lines.push('', `onnxruntime-node, CPU, ${threads} intra-op thread${threads > 1 ? 's' : ''}, graph optimisation '${optimization}'; latency per session.run call (one batch); images/s = batch / p50. int8: dfkd export --quantize int8 (QDQ, calibrated on the run's synthetic images); its test acc column is the float student's.`);
  return lines.join('\n') + '\n';
}

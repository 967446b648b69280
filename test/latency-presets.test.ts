// The latency student preset (issue 18): vit-student-28-fast builds, takes weight selection from a
// ViT teacher (a vit-teacher-28 fixture and the shipped teachers/mnist-vit and fashion-vit), exports,
// loads in ONNX Runtime with dfkd export's session options and matches libtorch to ≤ 1e-4 on real
// MNIST digits, and `dfkd distill --student vit-student-28-fast` runs with weight selection. Timing is
// not asserted here (a shared 2-core machine): the ratio is measured in bench/infer.ts and recorded
// in the registry; this file checks what makes it fast — fewer blocks and nodes, one head, no
// Transpose inside the blocks of the graph ORT runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '../src/tensor/tensor.js';
import { VisionTransformer } from '../src/models/vit.js';
import { createModel, describeModel, PRESETS } from '../src/models/registry.js';
import { loadClassifier } from '../src/models/load.js';
import { canSelectWeights, selectWeights } from '../src/distill/init.js';
import { resolveStudentInit } from '../src/distill/run.js';
import { saveCheckpoint } from '../src/export/checkpoint.js';
import { loadMnist } from '../src/data/mnist.js';
import { classifierToOnnx } from '../src/export/onnx.js';
import { decodeModel, metadataOf } from '../src/export/onnx-graph.js';
import { classifierParity, loadOnnx, ORT_SESSION_DEFAULTS, ortOptimizedNodes } from '../src/export/ort.js';

T.setNumThreads(1);

const REPO = join(import.meta.dirname, '..', '..');
const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');
const TOL = 1e-4;
const FAST = 'vit-student-28-fast';

let work: string;
let teacherDir: string;
let digits: T.Tensor;
let test28: ReturnType<typeof loadMnist>;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'dfkd-latency-'));
  test28 = loadMnist('test');
  digits = test28.images.narrow(0, 0, 64);
  // a teacher fixture of the shipped ViT teacher's shape (vit-teacher-28), random weights of the
  // trained teacher's scale: enough for selection, export and a 1-iteration distillation
  T.manualSeed(5);
  const teacher = createModel('vit-teacher-28');
  T.noGrad(() => {
    for (const [name, p] of teacher.namedParameters()) if (!name.includes('norm')) p.copy_(T.randn(p.shape).mul(0.1));
  });
  teacherDir = join(work, 'teacher');
  saveCheckpoint(join(teacherDir, 'model'), teacher, {
    preset: 'vit-teacher-28', overrides: {}, dataset: 'mnist', numClasses: 10, classNames: test28.classNames,
    inputShape: [1, 28, 28], mean: test28.mean, std: test28.std, params: teacher.numParameters(),
  });
  teacher.dispose();
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const card = (m: { numClasses: number }) => ({ preset: FAST, classNames: Array.from({ length: m.numClasses }, (_, i) => String(i)), mean: test28.mean, std: test28.std, dataset: 'mnist' });

describe(`${FAST}: the preset`, () => {
  test("builds: 28×28×1, patch 4 (the teachers'), 2 blocks, 1 head, width 48; ≥ 7× fewer FLOPs than vit-teacher-28", () => {
    const m = createModel(FAST);
    assert.ok(m instanceof VisionTransformer);
    assert.deepEqual(m.inputShape, [1, 28, 28]);
    assert.equal(m.config.patchSize, PRESETS['vit-teacher-28'].config.patchSize);
    assert.equal(m.blocks.length, 2);
    assert.equal(m.config.heads, 1);
    m.eval();
    const out = T.inferenceMode(() => m.forward(digits, { returnAttention: true }));
    assert.deepEqual(out.logits.shape, [64, 10]);
    assert.deepEqual(out.attentions![0]!.shape, [64, 1, 50, 50]);
    const ratio = describeModel('vit-teacher-28').flops / describeModel(FAST).flops;
    assert.ok(ratio > 7, `FLOP ratio ${ratio}`);
    m.dispose();
  });
});

describe(`${FAST}: weight selection from a ViT teacher`, () => {
  test('the vit-teacher-28 fixture: every student tensor selected — blocks 0 and 1, even channels; auto init is select', () => {
    const { model: teacher } = loadClassifier(teacherDir);
    const student = createModel(FAST);
    assert.ok(canSelectWeights(teacher as never, student as never));
    assert.equal(resolveStudentInit('auto', 'tgan', teacher, student), 'select');
    const r = selectWeights(teacher as never, student as never);
    assert.deepEqual(r.kept, {});
    assert.equal(Object.keys(r.selected).length, student.namedParameters().length);
    assert.ok(Object.values(r.selected).every((n) => !/^blocks\.[23]\./.test(n)), 'only the first two teacher blocks');
    const tp = Object.fromEntries(teacher.namedParameters());
    const sp = Object.fromEntries(student.namedParameters());
    const even = T.arange(0, 96, 2, { dtype: 'int64' });
    // fc2 [96, 384] → [48, 192]: even rows, every other hidden unit
    const want = T.tidy(() => tp['blocks.1.mlp.fc2.weight']!.indexSelect(0, even).indexSelect(1, T.arange(0, 384, 2, { dtype: 'int64' })).flatten().toArray());
    assert.deepEqual(sp['blocks.1.mlp.fc2.weight']!.flatten().toArray(), want);
    even.dispose();
    teacher.dispose();
    student.dispose();
  });

  for (const dir of ['teachers/mnist-vit', 'teachers/fashion-vit']) {
    test(`the shipped ${dir}: selectable, nothing kept random`, () => {
      const { model: teacher } = loadClassifier(join(REPO, dir));
      const student = createModel(FAST);
      assert.ok(canSelectWeights(teacher as never, student as never));
      assert.deepEqual(selectWeights(teacher as never, student as never).kept, {});
      teacher.dispose();
      student.dispose();
    });
  }
});

describe(`${FAST}: ONNX export, ONNX Runtime`, () => {
  test('weights selected from teachers/mnist-vit: exports, loads in ORT (graph optimisation all), max |Δ| ≤ 1e-4 on real digits', async () => {
    const { model: teacher } = loadClassifier(join(REPO, 'teachers/mnist-vit'));
    const student = createModel(FAST);
    selectWeights(teacher as never, student as never);
    student.eval();
    const { bytes, info } = classifierToOnnx(student, card(student), { dynamicBatch: true });
    assert.equal(metadataOf(decodeModel(bytes))['vit_dfkd.graph_layout'], 'rows');
    const loaded = await loadOnnx(bytes);
    assert.equal(ORT_SESSION_DEFAULTS.optimization, 'all');
    const r = await classifierParity(student, loaded, digits);
    await loaded.session.release();
    assert.ok(r.maxAbsLogits <= TOL, `max |Δlogits| ${r.maxAbsLogits}`);
    assert.ok(r.maxAbsAttention !== undefined && r.maxAbsAttention <= TOL, `max |Δattention| ${r.maxAbsAttention}`);
    assert.equal(r.argmaxDisagreements, 0);
    assert.deepEqual(info.outputs.map((o) => [o.name, o.dims]), [['logits', ['batch', 10]], ['attention', ['batch', 49]]]);
    teacher.dispose();
    student.dispose();
  });

  test('what ORT runs: fewer nodes than vit-student-28 and the teacher; one head leaves a single Transpose (the patch tokens)', async () => {
    const nodes = async (preset: string) => {
      const m = createModel(preset);
      m.eval();
      const r = await ortOptimizedNodes(classifierToOnnx(m, card(m), { dynamicBatch: true }).bytes);
      m.dispose();
      return r;
    };
    const fast = await nodes(FAST);
    const student = await nodes('vit-student-28');
    const teacher = await nodes('vit-teacher-28');
    assert.ok(fast.nodes < student.nodes && student.nodes < teacher.nodes, `${fast.nodes} / ${student.nodes} / ${teacher.nodes}`);
    assert.equal(fast.ops.Transpose, 1, JSON.stringify(fast.ops));
    // ORT's fusions applied: Linear → Gemm, erf GELU → Gelu, q·kᵀ·scale → FusedMatMul
    assert.equal(fast.ops['com.microsoft:Gelu'], 2, JSON.stringify(fast.ops));
    assert.equal(fast.ops['com.microsoft:FusedMatMul'], 2, JSON.stringify(fast.ops));
    assert.ok((fast.ops.Gemm ?? 0) >= 8, JSON.stringify(fast.ops));
  });
});

describe(`dfkd distill / export --student ${FAST} (CLI)`, () => {
  test('1 tgan iteration from the ViT teacher fixture: weight selection, a saved student; dfkd export checks it in ORT', () => {
    const out = join(work, 'run');
    const env = { ...process.env, VIT_DFKD_THREADS: '1', DFKD_DEBUG: '' };
    const d = spawnSync(process.execPath, [CLI, 'distill', '--teacher', teacherDir, '--student', FAST, '--method', 'tgan', '--iterations', '1', '--batch', '8', '--threads', '1', '--out', out, '--no-report'], { encoding: 'utf8', env, timeout: 120_000 });
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout + d.stderr, /student init: \d+ tensors selected from the teacher, 0 kept random/);
    assert.equal(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).preset, FAST);
    const onnxPath = join(work, 'fast.onnx');
    const e = spawnSync(process.execPath, [CLI, 'export', '--model', out, '--onnx', onnxPath, '--dynamic-batch', '--json'], { encoding: 'utf8', env, timeout: 120_000 });
    assert.equal(e.status, 0, e.stderr);
    const j = JSON.parse(e.stdout) as { parity: { maxAbsLogits: number; maxAbsAttention: number }; onnxruntime: { graph_optimization: string; intra_op_threads: number; nodes: number }; nodes: number };
    assert.ok(j.parity.maxAbsLogits <= TOL && j.parity.maxAbsAttention <= TOL, JSON.stringify(j.parity));
    assert.equal(j.onnxruntime.graph_optimization, 'all');
    assert.equal(j.onnxruntime.intra_op_threads, 1);
    assert.ok(j.onnxruntime.nodes > 0 && j.onnxruntime.nodes < j.nodes, `${j.onnxruntime.nodes} ORT nodes, ${j.nodes} in the file`);
    assert.ok(existsSync(onnxPath));
  });
});

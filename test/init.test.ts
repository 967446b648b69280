// Weight selection (src/distill/init.ts): which teacher entries a smaller student starts from.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/tensor.js';
import { VisionTransformer } from '../src/models/vit.js';
import { canSelectWeights, selectWeights, uniformIndices } from '../src/distill/init.js';
import { resolveStudentInit } from '../src/distill/run.js';
import { createModel } from '../src/models/registry.js';

T.setNumThreads(1);

const vit = (dim: number, depth: number, heads: number, numClasses = 10): VisionTransformer =>
  new VisionTransformer({ imageSize: 8, inChannels: 1, patchSize: 4, numClasses, dim, depth, heads });

const rows = (t: T.Tensor, idx: number[]): number[] => T.tidy(() => t.indexSelect(0, T.tensor(idx, { dtype: 'int64' })).flatten().toArray());

describe('weight selection (Xu et al. 2024)', () => {
  test('uniformIndices: evenly spaced, all when sizes match, error when asked for more', () => {
    assert.deepEqual(uniformIndices(8, 4), [0, 2, 4, 6]);
    assert.deepEqual(uniformIndices(6, 6), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(uniformIndices(9, 3), [0, 3, 6]);
    assert.throws(() => uniformIndices(3, 4), /cannot select 4 of 3/);
  });

  test('a half-width, shallower ViT gets the even channels of the first blocks; q, k and v are selected per chunk', () => {
    T.manualSeed(0);
    const teacher = vit(8, 2, 2);
    const student = vit(4, 1, 1);
    const r = selectWeights(teacher, student);
    const tp = Object.fromEntries(teacher.namedParameters());
    const sp = Object.fromEntries(student.namedParameters());
    assert.equal(Object.keys(r.kept).length, 0, JSON.stringify(r.kept));
    // patch embedding: output channels 0, 2, 4, 6
    assert.deepEqual(sp['patch_embed.proj.weight']!.flatten().toArray(), rows(tp['patch_embed.proj.weight']!, [0, 2, 4, 6]));
    // fused qkv [24, 8] → [12, 4]: rows 0,2,4,6 of q, 8,10,12,14 of k, 16,… of v; columns 0,2,4,6
    const want = T.tidy(() =>
      tp['blocks.0.attn.qkv.weight']!.indexSelect(0, T.tensor([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22], { dtype: 'int64' }))
        .indexSelect(1, T.tensor([0, 2, 4, 6], { dtype: 'int64' })).flatten().toArray());
    assert.deepEqual(sp['blocks.0.attn.qkv.weight']!.flatten().toArray(), want);
    // pos_embed [1, 5, 8] → [1, 5, 4]: token axis kept whole
    const pe = T.tidy(() => tp['pos_embed']!.indexSelect(2, T.tensor([0, 2, 4, 6], { dtype: 'int64' })).flatten().toArray());
    assert.deepEqual(sp['pos_embed']!.flatten().toArray(), pe);
    // the student's only block is the teacher's first: nothing of blocks.1 is used
    assert.ok(Object.values(r.selected).every((n) => !n.startsWith('blocks.1.')));
    teacher.dispose();
    student.dispose();
  });

  test('tensors the teacher lacks or that are larger in the student keep their init, and are reported', () => {
    const teacher = vit(4, 1, 1, 3);
    const student = vit(8, 1, 2, 3);
    const before = student.stateDict()['head.weight']!.clone();
    const r = selectWeights(teacher, student);
    assert.ok(r.kept['head.weight']?.includes('smaller than student'));
    assert.deepEqual(student.stateDict()['head.weight']!.toArray(), before.toArray());
    before.dispose();
    teacher.dispose();
    student.dispose();
  });

  test('the shipped presets: vit-teacher-28 → vit-student-28 selects every student tensor', () => {
    const teacher = createModel('vit-teacher-28');
    const student = createModel('vit-student-28');
    const r = selectWeights(teacher as never, student as never);
    assert.equal(Object.keys(r.kept).length, 0, JSON.stringify(r.kept));
    assert.equal(Object.keys(r.selected).length, student.namedParameters().length);
    teacher.dispose();
    student.dispose();
  });

  test("--student-init auto: select for a same-family student, random for another family and for scratch", () => {
    const teacher = createModel('vit-teacher-28');
    const student = createModel('vit-student-28');
    const lenet = createModel('lenet5-half-28');
    assert.ok(canSelectWeights(teacher as never, student as never));
    assert.ok(!canSelectWeights(teacher as never, lenet as never));
    assert.ok(!canSelectWeights(student as never, teacher as never), 'a larger student cannot be selected from a smaller teacher');
    assert.equal(resolveStudentInit('auto', 'tgan', teacher, student), 'select');
    assert.equal(resolveStudentInit('auto', 'scratch', teacher, student), 'random');
    assert.equal(resolveStudentInit('auto', 'dafl', teacher, lenet), 'random');
    assert.equal(resolveStudentInit('random', 'tgan', teacher, student), 'random');
    assert.equal(resolveStudentInit('select', 'scratch', teacher, student), 'select');
    for (const m of [teacher, student, lenet]) m.dispose();
  });
});

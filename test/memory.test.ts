// Memory: tidy scopes, keep, dispose, autograd graphs outliving JS handles, and the GC fallback.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';

import * as T from '../src/index.js';
import { F, type Tensor } from '../src/index.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Full GCs with turns of the event loop in between, since N-API finalizers run deferred. */
async function collect(rounds = 6): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc();
    await tick();
    await tick();
  }
}

describe('tidy', () => {
  test('disposes every tensor created inside except the returned one', () => {
    const base = T.liveTensors();
    let inner: Tensor[] = [];
    const out = T.tidy(() => {
      const a = T.ones([3]);
      const b = a.add(1);
      const c = b.mul(b);
      inner = [a, b];
      return c.sum();
    });
    assert.equal(T.liveTensors(), base + 1);
    assert.ok(inner.every((t) => t.isDisposed));
    assert.equal(out.isDisposed, false);
    assert.equal(out.item(), 12); // Σ (1+1)² over 3 elements
    out.dispose();
    assert.equal(T.liveTensors(), base);
  });

  test('keeps tensors returned inside arrays, plain objects and maps (nested)', () => {
    const base = T.liveTensors();
    const r = T.tidy(() => {
      const x = T.arange(4);
      const y = x.mul(2);
      x.add(100); // garbage
      return { list: [x, { deep: y }], map: new Map([['s', y.sum()]]), n: 3 };
    });
    assert.equal(T.liveTensors(), base + 3);
    assert.deepEqual((r.list[0] as Tensor).toArray(), [0, 1, 2, 3]);
    assert.deepEqual((r.list[1] as { deep: Tensor }).deep.toArray(), [0, 2, 4, 6]);
    assert.equal(r.map.get('s')!.item(), 12);
    assert.equal(r.n, 3);
    T.dispose(r);
    assert.equal(T.liveTensors(), base);
  });

  test('frees tensors returned by multi-output ops and grad getters made inside', () => {
    const base = T.liveTensors();
    const w = T.ones([3], { requiresGrad: true });
    T.tidy(() => {
      const { values, indices } = T.tensor([[1, 5], [7, 2]]).maxDim(1);
      values.add(indices.float());
      T.arange(6).split(2);
      w.mul(2).sum().backward();
      const g = w.grad!;
      assert.deepEqual(g.toArray(), [2, 2, 2]);
    });
    assert.equal(T.liveTensors(), base + 1); // w only: w's .grad lives inside w, not as a handle
    w.dispose();
    assert.equal(T.liveTensors(), base);
  });

  test('nested tidy moves returned tensors to the parent scope, which then frees them', () => {
    const base = T.liveTensors();
    let fromInner: Tensor | null = null;
    const outer = T.tidy(() => {
      fromInner = T.tidy(() => {
        T.zeros([2]); // garbage of the inner scope
        return T.ones([2]);
      });
      assert.equal(fromInner.isDisposed, false);
      assert.equal(T.liveTensors(), base + 1);
      return fromInner.add(1);
    });
    assert.equal(fromInner!.isDisposed, true); // not returned by the outer scope
    assert.deepEqual(outer.toArray(), [2, 2]);
    assert.equal(T.liveTensors(), base + 1);
    outer.dispose();
    assert.equal(T.liveTensors(), base);
  });

  test('a tensor returned through nested scopes survives both', () => {
    const base = T.liveTensors();
    const t = T.tidy(() => T.tidy(() => T.tidy(() => T.full([1], 4))));
    assert.equal(t.item(), 4);
    assert.equal(T.liveTensors(), base + 1);
    t.dispose();
  });

  test('a tensor made outside (or kept) and returned from a nested tidy is not disposed by the outer one', () => {
    const outside = T.ones([2]);
    let kept: Tensor | null = null;
    T.tidy(() => {
      const same = T.tidy(() => outside); // e.g. an identity layer returning its input
      assert.equal(same, outside);
      T.tidy(() => {
        kept = T.keep(T.ones([2]));
        return kept;
      });
    });
    assert.equal(outside.isDisposed, false);
    assert.equal(kept!.isDisposed, false);
    assert.deepEqual(outside.toArray(), [1, 1]);
    outside.dispose();
    kept!.dispose();
  });

  test('keep() exempts a tensor from every open scope', () => {
    const base = T.liveTensors();
    let kept: Tensor | null = null;
    T.tidy(() => {
      T.tidy(() => {
        kept = T.keep(T.ones([2]).mul(3));
        T.ones([5]);
      });
      assert.equal(kept!.isDisposed, false);
    });
    assert.equal(kept!.isDisposed, false);
    assert.deepEqual(kept!.toArray(), [3, 3]);
    assert.equal(T.liveTensors(), base + 1);
    kept!.dispose();
    assert.equal(T.liveTensors(), base);
  });

  test('tensors created before a scope are not touched by it', () => {
    const outside = T.ones([2]);
    T.tidy(() => outside.add(1));
    assert.equal(outside.isDisposed, false);
    assert.deepEqual(outside.toArray(), [1, 1]);
    outside.dispose();
  });

  test('an exception inside tidy frees its tensors and re-throws the same error', () => {
    const base = T.liveTensors();
    const err = new Error('boom');
    let made: Tensor[] = [];
    assert.throws(() => T.tidy(() => {
      made = [T.ones([4]), T.zeros([4])];
      made.push(made[0]!.add(made[1]!));
      throw err;
    }), (e) => e === err);
    assert.ok(made.every((t) => t.isDisposed));
    assert.equal(T.liveTensors(), base);
  });

  test('a libtorch error inside nested tidy frees both scopes', () => {
    const base = T.liveTensors();
    assert.throws(() => T.tidy(() => {
      T.ones([2]);
      return T.tidy(() => {
        T.ones([3]);
        return T.ones([2]).matmul(T.ones([3]));
      });
    }), /aten::matmul/);
    assert.equal(T.liveTensors(), base);
  });

  test('returning a Promise from tidy is refused and frees the scope', async () => {
    const base = T.liveTensors();
    assert.throws(() => T.tidy(() => {
      T.ones([2]);
      return Promise.resolve(1);
    }), /Promise/);
    assert.equal(T.liveTensors(), base);
  });
});

describe('dispose', () => {
  test('dispose() frees the native tensor once and is idempotent', () => {
    const base = T.liveTensors();
    const t = T.ones([3]);
    assert.equal(T.liveTensors(), base + 1);
    t.dispose();
    assert.equal(T.liveTensors(), base);
    t.dispose();
    t.dispose();
    assert.equal(T.liveTensors(), base);
    assert.equal(t.isDisposed, true);
  });

  test('dispose(value) frees every tensor in nested containers, each once', () => {
    const base = T.liveTensors();
    const a = T.ones([1]);
    const b = T.ones([1]);
    T.dispose({ x: [a, b, a], y: new Map([['b', b]]), z: 'text' });
    assert.ok(a.isDisposed && b.isDisposed);
    assert.equal(T.liveTensors(), base);
  });

  test('disposing a view leaves its base valid, and disposing the base leaves the view valid', () => {
    const base = T.arange(6).reshape([2, 3]);
    const row = base.select(0, 1);
    row.dispose();
    assert.deepEqual(base.toArray(), [0, 1, 2, 3, 4, 5]);
    const col = base.select(1, 2);
    base.dispose();
    assert.deepEqual(col.toArray(), [2, 5]); // the view holds the storage
    col.dispose();
  });

  test('each grad getter call is its own handle on the same gradient', () => {
    const x = T.ones([2], { requiresGrad: true });
    x.mul(3).sum().backward();
    const base = T.liveTensors();
    const g1 = x.grad!;
    const g2 = x.grad!;
    assert.equal(T.liveTensors(), base + 2);
    g1.dispose();
    assert.deepEqual(g2.toArray(), [3, 3]);
    g2.dispose();
    assert.deepEqual(x.grad!.toArray(), [3, 3]); // the gradient itself is still held by x
  });
});

describe('autograd graphs outlive JS handles', () => {
  test('y = x·w, then w and an intermediate disposed: backward still gives dy/dx = w', () => {
    const x = T.tensor([1, 2, 3], { requiresGrad: true });
    const w = T.tensor([4, 5, 6]);
    const h = x.mul(w);
    const y = h.exp().mul(0).add(h).sum(); // y = Σ x·w via intermediates
    w.dispose();
    h.dispose();
    y.backward();
    assert.deepEqual(x.grad!.toArray(), [4, 5, 6]);
  });

  test('a parameter disposed after the forward pass still receives the gradient in the graph', () => {
    const x = T.tensor([[1, 2]]);
    const w = T.tensor([[3], [4]], { requiresGrad: true });
    const keepW = w.detach(); // a second handle on w's storage to read later
    const loss = x.matmul(w).pow(2).sum(); // (1·3 + 2·4)² = 121; d/dw = 2·11·xᵀ = [22, 44]
    const [g] = T.grad(loss, [w]);
    w.dispose();
    assert.deepEqual(g!.toArray(), [22, 44]);
    assert.equal(loss.item(), 121);
    assert.deepEqual(keepW.toArray(), [3, 4]);
  });

  test('tidy around forward+backward keeps parameter grads and frees the activations', () => {
    const w = T.ones([3], { requiresGrad: true });
    const base = T.liveTensors();
    T.tidy(() => {
      const a = T.tensor([1, 2, 3]).mul(w);
      const b = a.tanh().sum();
      b.backward();
    });
    assert.equal(T.liveTensors(), base);
    const g = w.grad!;
    // d/dw Σ tanh(x·w) = x·(1 − tanh²(x·w)) at w = 1
    const expected = [1, 2, 3].map((v) => v * (1 - Math.tanh(v) ** 2));
    g.toArray().forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-6));
  });
});

describe('GC fallback', () => {
  test('tensors created without dispose in a loop are reclaimed once unreachable', async () => {
    await collect();
    const base = T.liveTensors();
    (() => {
      for (let i = 0; i < 2000; i++) T.ones([8]).add(1); // 2 handles per iteration, never disposed
    })();
    assert.ok(T.liveTensors() >= base + 1000, `expected the loop to leave handles alive before GC, got ${T.liveTensors() - base}`);
    await collect();
    const left = T.liveTensors() - base;
    assert.ok(left <= 10, `${left} handles still alive after GC`);
  });

  test('a reachable tensor is not collected', async () => {
    const held = T.tensor([7, 8]);
    const base = T.liveTensors();
    await collect();
    assert.equal(T.liveTensors(), base);
    assert.deepEqual(held.toArray(), [7, 8]);
    held.dispose();
  });

  test('a tensor disposed explicitly is not freed a second time by its finalizer', async () => {
    await collect();
    const base = T.liveTensors();
    (() => {
      for (let i = 0; i < 100; i++) T.ones([2]).dispose();
    })();
    assert.equal(T.liveTensors(), base);
    await collect();
    assert.equal(T.liveTensors(), base); // finalizers did not decrement the count again
  });
});

describe('training loop', () => {
  test('2,000 tiny training steps inside tidy keep liveTensors flat and the loss goes down', () => {
    T.manualSeed(0);
    // fit y = X·[2, −1] + 0.5 with a linear layer
    const X = T.randn([16, 2]);
    const Y = X.matmul(T.tensor([[2], [-1]])).add(0.5);
    const w = T.keep(T.zeros([1, 2], { requiresGrad: true }));
    const b = T.keep(T.zeros([1], { requiresGrad: true }));
    const lr = 0.1;
    const step = (): number => T.tidy(() => {
      const loss = F.mseLoss(F.linear(X, w, b), Y);
      loss.backward();
      T.noGrad(() => {
        w.sub_(w.grad!.mul(lr));
        b.sub_(b.grad!.mul(lr));
      });
      w.grad = null;
      b.grad = null;
      return loss.item();
    });
    const first = step();
    const base = T.liveTensors();
    let last = first;
    for (let i = 1; i < 2000; i++) {
      last = step();
      if (i % 250 === 0) assert.equal(T.liveTensors(), base, `live tensors grew at step ${i}`);
    }
    assert.equal(T.liveTensors(), base);
    assert.ok(last < first * 1e-3, `loss ${first} → ${last}`);
    const wv = w.toArray();
    assert.ok(Math.abs(wv[0]! - 2) < 1e-3 && Math.abs(wv[1]! + 1) < 1e-3, `w = ${wv}`);
    assert.ok(Math.abs(b.item() - 0.5) < 1e-3, `b = ${b.item()}`);
  });

  test('a training step with an optimiser-style state update (momentum buffer) stays flat too', () => {
    const w = T.keep(T.ones([4], { requiresGrad: true }));
    const m = T.keep(T.zeros([4]));
    const base = T.liveTensors();
    for (let i = 0; i < 500; i++) {
      T.tidy(() => {
        const [g] = T.grad(w.pow(2).sum(), [w]);
        T.noGrad(() => {
          m.mul_(0.9).add_(g!);
          w.sub_(m.mul(0.01));
        });
      });
    }
    assert.equal(T.liveTensors(), base);
    assert.ok(w.abs().max().item() < 0.05);
  });
});

// bench step: one training step of a fixed ViT (vit-bench-32: batch 64, 32×32×3, patch 4, width
// 192, depth 6, 3 heads, Adam), vit-dfkd vs the same model in PyTorch (bench/step_ref.py) when a
// python3 with torch is present, same thread count, timed alternately in rounds; ratio of medians.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { crossEntropy } from '../src/tensor/functional.js';
import { getNumThreads, manualSeed, randint, randn, tidy } from '../src/tensor/tensor.js';
import { Adam } from '../src/nn/optim.js';
import { createModel } from '../src/models/registry.js';
import { BENCH_DIR, median, report } from './common.js';

export interface StepOptions {
  rounds: number;
  stepsPerRound: number;
  batch: number;
  tiny?: boolean;
}

function findTorchPython(): string | null {
  for (const py of [process.env.PYTHON ?? '', 'python3', '/usr/bin/python3']) {
    if (!py) continue;
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

class TorchReference {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly proc: ReturnType<typeof spawn>) {
    this.lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  }
  static async start(python: string, threads: number, batch: number): Promise<TorchReference> {
    const proc = spawn(python, [join(BENCH_DIR, 'step_ref.py'), String(threads), String(batch)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const ref = new TorchReference(proc);
    await ref.next();
    return ref;
  }
  private async next(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error('PyTorch reference exited early');
    return JSON.parse(r.value) as Record<string, unknown>;
  }
  async steps(k: number): Promise<number[]> {
    this.proc.stdin!.write(`${JSON.stringify({ steps: k })}\n`);
    return (await this.next()).ms as number[];
  }
  stop(): void {
    this.proc.stdin!.end();
  }
}

export async function benchStep(o: StepOptions): Promise<string> {
  const threads = getNumThreads();
  manualSeed(0);
  const model = createModel('vit-bench-32');
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const x = randn([o.batch, 3, 32, 32]);
  const y = randint(0, 10, [o.batch]);
  const ours = (k: number): number[] => {
    const ms: number[] = [];
    for (let i = 0; i < k; i++) {
      const t0 = performance.now();
      tidy(() => {
        const loss = crossEntropy(model.forward(x).logits, y);
        opt.zeroGrad();
        loss.backward();
        opt.step();
      });
      ms.push(performance.now() - t0);
    }
    return ms;
  };
  const python = o.tiny ? null : findTorchPython();
  const ref = python ? await TorchReference.start(python, threads, o.batch) : null;
  if (!ref) process.stdout.write('PyTorch not found (apt-get install python3-torch): timing vit-dfkd alone\n');
  // Warm-up: first steps allocate optimiser state and caches in both engines.
  ours(1);
  await ref?.steps(1);
  const oursMs: number[] = [];
  const refMs: number[] = [];
  const roundRatios: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const a = ours(o.stepsPerRound);
    oursMs.push(...a);
    if (ref) {
      const b = await ref.steps(o.stepsPerRound);
      refMs.push(...b);
      roundRatios.push(median(a) / median(b));
    }
    process.stderr.write(`round ${r + 1}/${o.rounds}: vit-dfkd ${median(oursMs).toFixed(0)} ms${ref ? `, pytorch ${median(refMs).toFixed(0)} ms` : ''}\n`);
  }
  ref?.stop();
  const results: Record<string, unknown>[] = [{ engine: 'vit-dfkd', ms_per_step: median(oursMs), threads, steps: oursMs.length }];
  if (ref) results.push({ engine: 'pytorch', ms_per_step: median(refMs), threads, steps: refMs.length });
  // The machine is noisy: the ratio of medians over all steps, and the median of per-round ratios
  // (each round runs both engines back to back, so they share the machine's state).
  const summary = ref ? { ratio: median(oursMs) / median(refMs), median_round_ratio: median(roundRatios) } : {};
  return report({
    name: o.tiny ? 'step-tiny' : 'step',
    config: { model: 'vit-bench-32', batch: o.batch, optimizer: 'Adam(lr=1e-3)', rounds: o.rounds, steps_per_round: o.stepsPerRound, threads, params: model.numParameters() },
    results,
    summary,
  });
}

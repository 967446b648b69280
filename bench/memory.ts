// bench memory: RSS and live native tensors over a long training loop (a small ViT on random data,
// every step inside tidy). The loop must keep a flat RSS: growth from step 1k to 10k is reported.
import { crossEntropy } from '../src/tensor/functional.js';
import { liveTensors, manualSeed, randint, randn, tidy } from '../src/tensor/tensor.js';
import { AdamW } from '../src/nn/optim.js';
import { createModel } from '../src/models/registry.js';
import { report } from './common.js';

export async function benchMemory(o: { steps: number; batch: number; checkpoints: number[]; tiny?: boolean }): Promise<string> {
  manualSeed(0);
  const model = createModel('vit-tiny-28');
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const x = randn([o.batch, 1, 28, 28]);
  const y = randint(0, 10, [o.batch]);
  const rows: { step: number; rss_mb: number; live_tensors: number }[] = [];
  const t0 = performance.now();
  for (let step = 1; step <= o.steps; step++) {
    tidy(() => {
      const loss = crossEntropy(model.forward(x).logits, y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
    if (o.checkpoints.includes(step)) {
      const row = { step, rss_mb: process.memoryUsage().rss / 2 ** 20, live_tensors: liveTensors() };
      rows.push(row);
      process.stderr.write(`step ${step}: rss ${row.rss_mb.toFixed(1)} MiB, ${row.live_tensors} live tensors, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    }
  }
  const at = (s: number): number | undefined => rows.find((r) => r.step === s)?.rss_mb;
  const a = at(1000);
  const b = at(10000);
  return report({
    name: o.tiny ? 'memory-tiny' : 'memory',
    config: { model: 'vit-tiny-28', batch: o.batch, steps: o.steps, optimizer: 'AdamW' },
    results: rows,
    summary: a !== undefined && b !== undefined ? { rss_growth_1k_to_10k: (b - a) / a } : {},
  });
}

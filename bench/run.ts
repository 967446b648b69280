// npm run bench -- <name> [--tiny]: runs one benchmark, prints a table, writes bench/results/<name>.json.
import { benchStep } from './step.js';
import { benchMemory } from './memory.js';

const BENCHES: Record<string, (tiny: boolean) => Promise<string>> = {
  step: (tiny) => benchStep(tiny ? { rounds: 1, stepsPerRound: 1, batch: 4, tiny } : { rounds: 5, stepsPerRound: 4, batch: 64 }),
  memory: (tiny) =>
    benchMemory(tiny ? { steps: 30, batch: 4, checkpoints: [10, 30], tiny } : { steps: 10000, batch: 16, checkpoints: [100, 1000, 2500, 5000, 7500, 10000] }),
};

const [name, ...flags] = process.argv.slice(2);
const run = name ? BENCHES[name] : undefined;
if (!run) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [--tiny]\n`);
  process.exit(2);
}
await run(flags.includes('--tiny'));

// The second process of `dfkd distill --task detect --generator-process` (feed.ts): builds the run's
// teacher, student and method exactly as the training process does, optionally loads the method's
// state from the checkpoint being resumed, and produces canvases until told to stop. Its failure is
// written to <feed>/error.txt for the training process to report.
import { writeFileAtomic } from '../../util/fs.js';
import { dispose, setNumThreads } from '../../tensor/tensor.js';
import { checkpointPaths, loadTensors, readCheckpointConfig } from '../../export/checkpoint.js';
import { unprefixed } from '../../export/checkpoint.js';
import { feedFiles, PRODUCER_WRITE, runProducer, type ProducerArgs } from './feed.js';
import { prepareDetectRun, type DetectDistillConfig } from './run.js';

const args = JSON.parse(process.argv[2] ?? '{}') as ProducerArgs;
try {
  setNumThreads(args.threads);
  const cfg = args.cfg as DetectDistillConfig;
  const { ctx, method } = prepareDetectRun({ ...cfg, generatorProcess: true });
  if (args.start > 0) {
    if (!args.resumeFrom) throw new Error(`start at iteration ${args.start} without a checkpoint to resume from`);
    const saved = readCheckpointConfig<{ method: Record<string, unknown> }>(args.resumeFrom);
    const { tensors } = loadTensors(checkpointPaths(args.resumeFrom).weights);
    method.loadStateDict({ tensors: unprefixed('method.', tensors), meta: saved.method });
    dispose(tensors);
  }
  runProducer(ctx, method, cfg.loop.seed, args);
  process.exit(0);
} catch (e) {
  try {
    writeFileAtomic(feedFiles.error(args.dir), e instanceof Error ? e.message : String(e), PRODUCER_WRITE);
  } catch {
    // the feed folder is gone: the training process has stopped (and the folder is not made again)
  }
  process.exit(1);
}

// bench teacher: every shipped teacher (teachers/*/) — test accuracy re-measured on the real test
// split, training wall time and epochs as recorded by the `dfkd train` run that made it, params and
// FLOPs. With --retrain, each teacher is trained again from scratch with its recorded command (into
// bench/runs/teacher-<name>/) and the wall time and test accuracy of that fresh run are reported.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadDataset } from '../src/data/index.js';
import { loadClassifier, type ModelCard } from '../src/models/load.js';
import { countFlops } from '../src/models/flops.js';
import { evaluateClassifier } from '../src/train/classifier.js';
import { loadDetector } from '../src/detect/run.js';
import { evaluateDetector } from '../src/detect/evaluate.js';
import { loadDetectionDataset } from '../src/data/detection.js';
import { BENCH_DIR, report } from './common.js';

export interface TeacherBenchOptions {
  /** Train each teacher again with its recorded command instead of reading the recorded run. */
  retrain: boolean;
  /** Only these teacher folder names (default: all under teachers/). */
  only?: string[];
  tiny: boolean;
}

const ROOT = join(BENCH_DIR, '..');

export function shippedTeachers(dir = join(ROOT, 'teachers')): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => existsSync(join(dir, n, 'model.json')))
    .sort();
}

export async function benchTeacher(o: TeacherBenchOptions): Promise<string> {
  const names = (o.only ?? shippedTeachers()).slice(0, o.tiny ? 1 : undefined);
  if (names.length === 0) throw new Error('bench teacher: no teachers found under teachers/');
  const rows: Record<string, unknown>[] = [];
  for (const name of names) {
    let path = join(ROOT, 'teachers', name);
    const card = JSON.parse(readFileSync(join(path, 'model.json'), 'utf8')) as ModelCard;
    let seconds = card.seconds ?? null;
    let command = card.command ?? '';
    if (o.retrain) {
      if (!card.command) throw new Error(`bench teacher: ${name}/model.json records no command to retrain with`);
      const out = join(BENCH_DIR, 'runs', `teacher-${name}`);
      const args = card.command.replace(/^dfkd\s+/, '').replace(/--out\s+\S+/, `--out ${out}`).split(/\s+/);
      process.stdout.write(`retraining ${name}: dfkd ${args.join(' ')}\n`);
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], { stdio: 'inherit', cwd: ROOT });
      if (r.status !== 0) throw new Error(`bench teacher: retraining ${name} failed (exit ${r.status})`);
      seconds = (performance.now() - t0) / 1000;
      path = out;
      command = `dfkd ${args.join(' ')}`;
    }
    if ((card as { task?: string }).task === 'detect') {
      // A detector: COCO mAP on the test canvases instead of accuracy.
      const { model, card: c } = loadDetector(path);
      const r = evaluateDetector(model, loadDetectionDataset(c.dataset, 'test'));
      rows.push({
        teacher: name, dataset: c.dataset, model: c.preset, test_map: r.map, test_ap50: r.ap50, recorded_test_map: c.test_map ?? null,
        seconds, epochs: (c as { epochs?: number }).epochs ?? null, params: model.numParameters(), flops: c.flops ?? null, command,
      });
      model.dispose();
      continue;
    }
    const { model, card: c } = loadClassifier(path);
    const test = loadDataset(c.dataset, 'test');
    const acc = evaluateClassifier(model, test).accuracy;
    rows.push({
      teacher: name,
      dataset: c.dataset,
      model: c.preset,
      test_acc: acc,
      recorded_test_acc: c.test_acc ?? null,
      seconds,
      epochs: c.epochs ?? null,
      params: model.numParameters(),
      flops: countFlops(model).flops,
      command,
    });
    model.dispose();
    test.images.dispose();
    test.labels.dispose();
  }
  return report({ name: 'teacher', config: { retrain: o.retrain, teachers: names }, results: rows });
}

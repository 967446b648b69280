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

interface TeacherStage { command: string; epochs?: number; seconds?: number }
/** A teacher's card with, for one made by `dfkd train --init`, the starting model's run in train.init. */
type StagedCard = Pick<ModelCard, 'command' | 'epochs' | 'seconds'> & { train?: { init?: Partial<TeacherStage> | null } };

/** The runs that made a teacher, first to last: the `--init` model's run (as its card recorded it), then its own. */
export function teacherStages(card: StagedCard): TeacherStage[] {
  const own: TeacherStage = { command: card.command ?? '', epochs: card.epochs, seconds: card.seconds };
  const init = card.train?.init;
  if (!init) return [own];
  return [{ command: init.command ?? '', epochs: init.epochs, seconds: init.seconds }, own];
}

export async function benchTeacher(o: TeacherBenchOptions): Promise<string> {
  const names = (o.only ?? shippedTeachers()).slice(0, o.tiny ? 1 : undefined);
  if (names.length === 0) throw new Error('bench teacher: no teachers found under teachers/');
  const rows: Record<string, unknown>[] = [];
  for (const name of names) {
    let path = join(ROOT, 'teachers', name);
    const card = JSON.parse(readFileSync(join(path, 'model.json'), 'utf8')) as ModelCard & StagedCard;
    // A teacher made in two stages (a run, then `dfkd train --init` from it): both commands, in order.
    const stages = teacherStages(card);
    let seconds = stages.every((st) => st.seconds !== undefined) ? stages.reduce((a, st) => a + st.seconds!, 0) : null;
    let command = stages.map((st) => st.command).join(' → ');
    const epochs = stages.every((st) => st.epochs !== undefined) ? stages.map((st) => st.epochs!).join(' + ') : null;
    if (o.retrain) {
      if (stages.some((st) => !st.command)) throw new Error(`bench teacher: ${name}/model.json records no command to retrain with`);
      const t0 = performance.now();
      const commands: string[] = [];
      let previous = '';
      stages.forEach((st, k) => {
        const out = join(BENCH_DIR, 'runs', k === stages.length - 1 ? `teacher-${name}` : `teacher-${name}-stage${k + 1}`);
        let line = st.command.replace(/^dfkd\s+/, '').replace(/--out\s+\S+/, `--out ${out}`);
        if (k > 0) line = line.replace(/--init\s+\S+/, `--init ${previous}`);
        const args = [...line.split(/\s+/), '--force'];
        process.stdout.write(`retraining ${name} (stage ${k + 1} of ${stages.length}): dfkd ${args.join(' ')}\n`);
        const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], { stdio: 'inherit', cwd: ROOT });
        if (r.status !== 0) throw new Error(`bench teacher: retraining ${name} failed (exit ${r.status})`);
        commands.push(`dfkd ${args.join(' ')}`);
        previous = out;
        path = out;
      });
      seconds = (performance.now() - t0) / 1000;
      command = commands.join(' → ');
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
      epochs: stages.length === 1 ? c.epochs ?? null : epochs,
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

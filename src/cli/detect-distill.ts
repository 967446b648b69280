// dfkd distill --task detect: data-free distillation of a DETR teacher into a DETR student.
import { join } from 'node:path';
import { prepareRunFolder } from './run-folder.js';
import { DETECT_METHODS } from '../detect/distill/methods.js';
import { checkDetectRunInputs, runDetectDistillation, type DetectDistillConfig, type DetectDistillResult } from '../detect/distill/run.js';
import { writeRunReport } from '../report/html.js';
import { progressBar, say } from './progress.js';
import { hparamFlags, kebab, loopConfigOf, type DistillCliOptions } from './distill.js';

const f4 = (x: number): string => x.toFixed(4);

/** Every detection hyper-parameter, with the methods that have it and their defaults. */
export function detectHparamFlags(): Map<string, { methods: string[]; defaults: Record<string, number> }> {
  const flags = new Map<string, { methods: string[]; defaults: Record<string, number> }>();
  for (const [name, m] of Object.entries(DETECT_METHODS)) {
    for (const [k, v] of Object.entries(m.defaults)) {
      const f = flags.get(k) ?? { methods: [], defaults: {} };
      f.methods.push(name);
      f.defaults[name] = v;
      flags.set(k, f);
    }
  }
  return flags;
}

export function runDetectDistillCommand(o: DistillCliOptions): DetectDistillResult | null {
  const spec = DETECT_METHODS[o.method];
  if (!spec) throw new Error(`unknown detection method '${o.method}'; available: ${Object.keys(DETECT_METHODS).join(', ')}`);
  const hparams: Record<string, number> = {};
  const detectFlags = detectHparamFlags();
  for (const [k, f] of detectFlags) {
    const v = o[k];
    if (v === undefined) continue;
    if (!f.methods.includes(o.method)) throw new Error(`--${kebab(k)} does not apply to ${o.method} (detection; it is a hyper-parameter of ${f.methods.join(', ')})`);
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${kebab(k)}: '${String(v)}' is not a number`);
    hparams[k] = n;
  }
  for (const k of hparamFlags().keys()) {
    if (o[k] !== undefined && !detectFlags.has(k)) throw new Error(`--${kebab(k)} is a classification hyper-parameter; it does not apply to detection`);
  }
  checkDetectRunInputs(o);
  const out = o.out ?? join('runs', `distill-detect-${o.method}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  if (!o.folderReady) prepareRunFolder(out, o, say);
  const loop = loopConfigOf(o);
  const cfg: DetectDistillConfig = { task: 'detect', teacher: o.teacher, student: o.student, method: o.method, hparams, loop, studentInit: o.studentInit as DetectDistillConfig['studentInit'], ...(o.generatorProcess ? { generatorProcess: true } : {}) };
  const budget = o.iterations !== undefined ? `${o.iterations} iterations` : `${loop.minutes} min`;
  say(`dfkd distill (detection): ${o.method} (${spec.description}), teacher ${o.teacher} → student ${o.student}, ${budget}, batch ${o.batch}, seed ${o.seed} → ${out}`);
  const bar = progressBar('distill', '{logs} | val mAP {val} | {ips} it/s');
  let lastVal = 'n/a';
  const result = runDetectDistillation(cfg, out, {
    resume: o.resume,
    log: say,
    onIteration: (it, total, logs, seconds) => {
      const shown = ['S/set', 'S/kd', 'S/objects', 'G/discrepancy', 'G/set'].filter((k) => logs[k] !== undefined).slice(0, 3).map((k) => `${k} ${logs[k]!.toFixed(3)}`).join(' ');
      bar.update(it, total === Number.MAX_SAFE_INTEGER ? it : total, { logs: shown, val: lastVal, ips: (it / Math.max(1e-9, seconds)).toFixed(2) });
    },
    onEval: (row) => {
      lastVal = f4(row.val_map ?? Number.NaN);
    },
  });
  bar.stop();
  if (!result) return null; // a data-parallel rank other than 0: rank 0 reports
  if (o.report) writeRunReport(out);
  say(`student test mAP@[.5:.95] ${f4(result.test_map)}, AP50 ${f4(result.test_ap50)} | teacher ${f4(result.teacher_test_map)}, AP50 ${f4(result.teacher_test_ap50)} | mAP retention ${(100 * result.map_retention).toFixed(1)}%`);
  say(`student ${result.student_params.toLocaleString()} params, ${(result.student_flops / 1e6).toFixed(2)} MFLOPs | teacher ${result.teacher_params.toLocaleString()} params, ${(result.teacher_flops / 1e6).toFixed(2)} MFLOPs`);
  say(`${result.iterations} iterations in ${result.seconds.toFixed(0)} s (${result.iterations_per_second.toFixed(2)} it/s)${o.report ? `; report: ${join(out, 'report.html')}` : ''}`);
  return result;
}

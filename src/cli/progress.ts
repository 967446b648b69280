// Progress bars for long runs: step, loss, throughput and ETA; plain periodic lines when not a TTY
// (CI logs), so a user always sees that work is moving.
import cliProgress from 'cli-progress';
import { dataParallel } from '../dist/data-parallel.js';

export interface Progress {
  update(value: number, total: number, fields: Record<string, string | number>): void;
  stop(): void;
}

/** Whether this process speaks for its run: a single process, or rank 0 of a data-parallel one. */
export function speaksForRun(): boolean {
  return (dataParallel()?.rank ?? 0) === 0;
}

/** A line on stdout from the process that speaks for the run (the other data-parallel ranks are silent). */
export function say(line: string): void {
  if (speaksForRun()) process.stdout.write(`${line}\n`);
}

/** A bar that draws nothing: data-parallel ranks other than 0 (rank 0 shows the run's progress). */
const silentProgress: Progress = { update() {}, stop() {} };

export function progressBar(label: string, fieldsFormat: string): Progress {
  if (!speaksForRun()) return silentProgress;
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} {bar} {percentage}% | {value}/{total} | ${fieldsFormat} | ETA {eta_formatted}`,
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      etaBuffer: 50,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  // Training loops are synchronous, so cli-progress's timer never fires while they run; without a
  // TTY (CI logs) it also skips synchronous redraws. Redraw from update() ourselves, every 5 s.
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  return {
    update(value, total, fields) {
      if (!started) {
        bar.start(total, value, fields);
        started = true;
        lastLine = Date.now();
      } else {
        bar.setTotal(total);
        bar.update(value, fields);
        if (!tty && Date.now() - lastLine >= 5000) {
          (bar as unknown as { render(): void }).render();
          lastLine = Date.now();
        }
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

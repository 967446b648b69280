// Progress bars for long runs: step, loss, throughput and ETA; plain periodic lines when not a TTY
// (CI logs), so a user always sees that work is moving.
import cliProgress from 'cli-progress';

export interface Progress {
  update(value: number, total: number, fields: Record<string, string | number>): void;
  stop(): void;
}

export function progressBar(label: string, fieldsFormat: string): Progress {
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
  return {
    update(value, total, fields) {
      if (!started) {
        bar.start(total, value, fields);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(value, fields);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

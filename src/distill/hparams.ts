// Range checks for a method's hyper-parameters, with the CLI flag in the message (`--steps-per-batch`),
// thrown from the method's constructor — before any run folder is made.
const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export interface HparamChecks {
  int(name: string, v: number, min: number): void;
  nonNegative(name: string, v: number): void;
  positive(name: string, v: number): void;
}

export function hparamChecks(method: string): HparamChecks {
  return {
    int(name, v, min) {
      if (!Number.isInteger(v) || v < min) throw new RangeError(`${method}: --${kebab(name)} must be an integer ≥ ${min}, got ${v}`);
    },
    nonNegative(name, v) {
      if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${method}: --${kebab(name)} must be a finite number ≥ 0, got ${v}`);
    },
    positive(name, v) {
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${method}: --${kebab(name)} must be a finite number > 0, got ${v}`);
    },
  };
}

// Gradient checking against central finite differences, in float64 (torch.autograd.gradcheck).
import { grad, noGrad, tensor, tidy, type Tensor } from '../tensor/tensor.js';

export interface GradcheckOptions {
  /** Finite-difference step. */
  eps?: number;
  /** Largest accepted relative error |analytic − numeric| / max(|analytic|, |numeric|, atolFloor). */
  rtol?: number;
  /** Below this magnitude errors are judged absolutely (avoids dividing by ~0). */
  atolFloor?: number;
}

export interface GradcheckReport {
  ok: boolean;
  maxRelError: number;
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
}

/**
 * Compares the autograd gradient of sum(fn(inputs) ⊙ w), for a fixed non-uniform weighting w,
 * with central differences (f(x + eps) − f(x − eps)) / 2eps for every element of every input.
 * Inputs must be float64 leaf tensors with requiresGrad set. fn must be deterministic.
 */
export function gradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], o: GradcheckOptions = {}): GradcheckReport {
  const eps = o.eps ?? 1e-6;
  const rtol = o.rtol ?? 1e-5;
  const floor = o.atolFloor ?? 1e-3;
  for (const [i, x] of inputs.entries()) {
    if (x.dtype !== 'float64') throw new Error(`gradcheck: input ${i} is ${x.dtype}; use float64`);
    if (!x.requiresGrad) throw new Error(`gradcheck: input ${i} does not require grad`);
  }
  return tidy(() => {
    const probe = noGrad(() => fn(...inputs));
    // Deterministic weights in [0.5, 1.5): every output element counts, with a different weight.
    const weights = Float64Array.from({ length: probe.numel() }, (_, k) => 0.5 + ((k * 7919) % 1000) / 1000);
    const weight = tensor(weights, { shape: probe.shape, dtype: 'float64' });
    const objective = (): Tensor => fn(...inputs).mul(weight).sum();

    const analytic = grad(objective(), inputs, { allowUnused: true }).map((g, i) =>
      g === null ? new Float64Array(inputs[i]!.numel()) : (g.data() as Float64Array),
    );
    let maxRel = 0;
    let worst: GradcheckReport['worst'] = null;
    noGrad(() => {
      for (const [i, x] of inputs.entries()) {
        const flat = x.view([-1]);
        const values = flat.data() as Float64Array;
        for (let k = 0; k < values.length; k++) {
          const orig = values[k]!;
          setElement(flat, k, orig + eps);
          const plus = tidy(() => objective().item());
          setElement(flat, k, orig - eps);
          const minus = tidy(() => objective().item());
          setElement(flat, k, orig);
          const numeric = (plus - minus) / (2 * eps);
          const a = analytic[i]![k]!;
          const rel = Math.abs(a - numeric) / Math.max(Math.abs(a), Math.abs(numeric), floor);
          if (worst === null || rel > maxRel) {
            worst = { input: i, index: k, analytic: a, numeric };
            maxRel = rel;
          }
        }
      }
    });
    return { ok: maxRel < rtol, maxRelError: maxRel, worst };
  });
}

function setElement(flat: Tensor, k: number, value: number): void {
  tidy(() => flat.select(0, k).fill_(value));
}

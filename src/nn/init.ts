// Initialisers (torch.nn.init and timm's trunc_normal_), in place, without recording gradients.
import { noGrad, tidy, type Tensor } from '../tensor/tensor.js';

/** fan_in and fan_out of a weight: Linear [out, in], Conv [out, in/groups, kh, kw]. */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  const s = t.shape;
  if (s.length < 2) throw new Error(`fans: need a weight of at least 2 dims, got [${s.join(', ')}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: s[1]! * receptive, fanOut: s[0]! * receptive };
}

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  return noGrad(() => t.uniform_(a, b));
}

export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return noGrad(() => t.normal_(mean, std));
}

export function constant_(t: Tensor, value: number): Tensor {
  return noGrad(() => t.fill_(value));
}

export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);

/**
 * Normal(mean, std) truncated to [a, b], by inverse-CDF sampling as timm's trunc_normal_:
 * u ~ U(Φ(α), Φ(β)) mapped through √2·erfinv(2u − 1). Exact, no rejection loop.
 */
export function truncNormal_(t: Tensor, std = 1, mean = 0, a = -2, b = 2): Tensor {
  const cdf = (x: number): number => (1 + erf(x / Math.SQRT2)) / 2;
  const lo = cdf((a - mean) / std);
  const hi = cdf((b - mean) / std);
  return noGrad(() =>
    tidy(() => {
      t.uniform_(2 * lo - 1, 2 * hi - 1).erfinv_().mul_(std * Math.SQRT2).add_(mean).clamp_(a, b);
      return t;
    }),
  );
}

export type Nonlinearity = 'linear' | 'relu' | 'leaky_relu' | 'tanh' | 'sigmoid' | 'gelu';

/** The recommended gain of torch.nn.init.calculate_gain. */
export function gain(nonlinearity: Nonlinearity, negativeSlope = 0.01): number {
  switch (nonlinearity) {
    case 'relu': return Math.SQRT2;
    case 'leaky_relu': return Math.sqrt(2 / (1 + negativeSlope ** 2));
    case 'tanh': return 5 / 3;
    default: return 1;
  }
}

export function kaimingUniform_(t: Tensor, o: { a?: number; mode?: 'fan_in' | 'fan_out'; nonlinearity?: Nonlinearity } = {}): Tensor {
  const { fanIn, fanOut } = fans(t);
  const fan = (o.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  const g = gain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  const bound = Math.sqrt(3) * (g / Math.sqrt(fan));
  return uniform_(t, -bound, bound);
}

export function kaimingNormal_(t: Tensor, o: { a?: number; mode?: 'fan_in' | 'fan_out'; nonlinearity?: Nonlinearity } = {}): Tensor {
  const { fanIn, fanOut } = fans(t);
  const fan = (o.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  return normal_(t, 0, gain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(fan));
}

export function xavierUniform_(t: Tensor, g = 1): Tensor {
  const { fanIn, fanOut } = fans(t);
  const bound = g * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}

export function xavierNormal_(t: Tensor, g = 1): Tensor {
  const { fanIn, fanOut } = fans(t);
  return normal_(t, 0, g * Math.sqrt(2 / (fanIn + fanOut)));
}

/**
 * The error function: its Taylor series for |x| < 2 (converged to double precision), Numerical
 * Recipes' erfc fit beyond (|error| < 1.2e-7 where erf is already within 0.005 of ±1).
 */
export function erf(x: number): number {
  if (Math.abs(x) < 2) {
    let sum = x;
    let term = x;
    for (let n = 1; n < 60; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

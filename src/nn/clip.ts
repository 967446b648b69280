// Gradient clipping, as torch.nn.utils.clip_grad_norm_.
import { Tensor, noGrad, stack, tidy } from '../tensor/tensor.js';
import { syncGradients } from './optim.js';

/**
 * Rescales the gradients of `params` in place so their joint `normType`-norm is at most `maxNorm`,
 * and returns the joint norm BEFORE clipping (torch.nn.utils.clip_grad_norm_):
 *
 *   total = ‖(‖g₁‖ₚ, ‖g₂‖ₚ, …)‖ₚ   (p = ∞: the largest |gᵢ| of all)
 *   coef  = min(1, maxNorm / (total + 1e-6));   gᵢ ← coef·gᵢ
 *
 * Parameters without a gradient are ignored (no gradients at all: returns 0). The arithmetic runs in
 * the gradients' dtype with tensor ops, as torch. Unlike torch, a non-finite total (a NaN or ∞
 * gradient) leaves the gradients untouched and is returned, so the caller can detect the bad step
 * and skip it.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType: number | 'inf' = 2): number {
  const p = normType === 'inf' ? Infinity : normType;
  if (typeof p !== 'number' || Number.isNaN(p) || p <= 0) throw new RangeError(`clipGradNorm: normType must be > 0 or 'inf' (got ${String(normType)})`);
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm) || maxNorm < 0) throw new RangeError(`clipGradNorm: maxNorm must be >= 0 (got ${String(maxNorm)})`);
  const list = [...params];
  syncGradients(list); // data-parallel: the norm of the all-ranks gradient, as under DDP
  return noGrad(() =>
    tidy(() => {
      const grads: Tensor[] = [];
      for (const param of list) {
        const g = param.grad; // new handles, freed by the scope (the gradients themselves live on)
        if (g !== null) grads.push(g);
      }
      if (grads.length === 0) return 0;
      const device = grads[0]!.device;
      const norms = grads.map((g) => {
        const n = g.norm(p);
        return n.device === device ? n : n.to(device);
      });
      const stacked = stack(norms);
      const total = p === Infinity ? stacked.max() : stacked.norm(p);
      const totalValue = total.item();
      if (!Number.isFinite(totalValue)) return totalValue;
      // torch: clip_coef = max_norm / (total_norm + 1e-6), i.e. reciprocal() * max_norm; clamp(max=1).
      const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1);
      for (const g of grads) g.mul_(coef.device === g.device ? coef : coef.to(g.device));
      return totalValue;
    }),
  );
}

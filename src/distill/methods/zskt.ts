// `zskt` — Zero-Shot Knowledge Transfer (Micaelli & Storkey, NeurIPS 2019). The generator maximises
// KL(σ(T) ‖ σ(S)); the student minimises KL + β·Σ_l AT_l, attention transfer over matched blocks
// where a ViT block's map is the per-patch mean of squared token activations (METHODS.md).
// n_G = 1, n_S = 10 per iteration, β = 250.
import { noGrad, type Tensor } from '../../tensor/tensor.js';
import type { VisionTransformer } from '../../models/vit.js';
import { attentionTransferLoss, klDivergenceTS, matchBlocks, spatialAttentionMap } from '../losses.js';
import type { DistillContext, StudentLoss, SyntheticBatch } from '../types.js';
import { Dfad, DFAD_DEFAULTS } from './dfad.js';

export const ZSKT_DEFAULTS = {
  ...DFAD_DEFAULTS,
  studentSteps: 10,
  beta: 250,
  lrG: 1e-3,
  lrS: 1e-3,
  latentDim: 100,
};
export type ZsktHparams = typeof ZSKT_DEFAULTS;

export class Zskt extends Dfad {
  override readonly name = 'zskt';
  private readonly beta: number;
  private readonly pairs: [number, number][] | null;

  constructor(ctx: DistillContext, overrides: Partial<ZsktHparams> = {}) {
    const h = { ...ZSKT_DEFAULTS, ...overrides };
    super(ctx, h);
    (this as unknown as { hparams: ZsktHparams }).hparams = h;
    this.beta = h.beta;
    const t = ctx.teacher as unknown as Partial<VisionTransformer>;
    const s = ctx.student as unknown as Partial<VisionTransformer>;
    // Attention transfer needs patch tokens on both sides; for CNN pairs the term is left out (said in logs).
    this.pairs = t.blocks && s.blocks ? matchBlocks(t.blocks.length, s.blocks.length) : null;
  }

  protected override adversarialObjective(ctx: DistillContext, x: Tensor): { objective: Tensor; logs: Record<string, number> } {
    const kl = klDivergenceTS(ctx.teacher.forward(x).logits, ctx.student.forward(x).logits);
    return { objective: kl, logs: { 'G/kl': kl.item() } };
  }

  override studentLoss(ctx: DistillContext, batch: SyntheticBatch): StudentLoss {
    const withTokens = this.pairs !== null && this.beta > 0;
    const tOut = noGrad(() => ctx.teacher.forward(batch.x, { returnTokens: withTokens }));
    const sOut = ctx.student.forward(batch.x, { returnTokens: withTokens });
    const kl = klDivergenceTS(tOut.logits, sOut.logits);
    const logs: Record<string, number> = { 'S/kl': kl.item() };
    let loss = kl;
    if (withTokens) {
      const tt = tOut as unknown as { tokens: Tensor[]; numPrefix: number };
      const st = sOut as unknown as { tokens: Tensor[]; numPrefix: number };
      let at: Tensor | null = null;
      for (const [ti, si] of this.pairs!) {
        const term = attentionTransferLoss(spatialAttentionMap(tt.tokens[ti]!, tt.numPrefix), spatialAttentionMap(st.tokens[si]!, st.numPrefix));
        at = at ? at.add(term) : term;
      }
      loss = loss.add(at!.mul(this.beta));
      logs['S/at'] = at!.item();
    }
    return { loss, logs };
  }
}

// ViT / DeiT checkpoints as timm and Hugging Face write them, for tests of the importer: random
// weights under each library's key names (written out here, not taken from our model), and an
// independent forward pass of timm's VisionTransformer computed from those weights with plain
// tensor operations (F.conv2d, F.layerNorm, matmul, softmax — no VisionTransformer module), so an
// imported model's logits can be checked against something that does not share its code.
import { cat, noGrad, randn, tidy, type Tensor } from '../tensor/tensor.js';
import { conv2d, gelu, layerNorm, linear } from '../tensor/functional.js';
import type { ViTConfig } from '../models/vit.js';

export type FixtureViTConfig = Pick<ViTConfig, 'imageSize' | 'inChannels' | 'patchSize' | 'numClasses' | 'dim' | 'depth' | 'heads'> & Partial<ViTConfig>;

/** Random weights under timm's key names (qkv fused), for a model of config `c` (MLP ratio 4 unless given). */
export function timmViTWeights(c: FixtureViTConfig): Record<string, Tensor> {
  const D = c.dim;
  const H = (c.mlpRatio ?? 4) * D;
  const grid = c.imageSize / c.patchSize;
  const prefix = c.distToken ? 2 : 1;
  const r = (shape: number[], std = 0.2): Tensor => randn(shape).mul(std);
  const ln = (): Tensor => randn([D]).mul(0.1).add(1);
  const w: Record<string, Tensor> = {
    'patch_embed.proj.weight': r([D, c.inChannels, c.patchSize, c.patchSize]),
    'patch_embed.proj.bias': r([D]),
    cls_token: r([1, 1, D]),
    pos_embed: r([1, grid * grid + prefix, D]),
  };
  if (c.distToken) w['dist_token'] = r([1, 1, D]);
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    Object.assign(w, {
      [`${b}.norm1.weight`]: ln(), [`${b}.norm1.bias`]: r([D]),
      [`${b}.attn.qkv.weight`]: r([3 * D, D]), [`${b}.attn.qkv.bias`]: r([3 * D]),
      [`${b}.attn.proj.weight`]: r([D, D]), [`${b}.attn.proj.bias`]: r([D]),
      [`${b}.norm2.weight`]: ln(), [`${b}.norm2.bias`]: r([D]),
      [`${b}.mlp.fc1.weight`]: r([H, D]), [`${b}.mlp.fc1.bias`]: r([H]),
      [`${b}.mlp.fc2.weight`]: r([D, H]), [`${b}.mlp.fc2.bias`]: r([D]),
    });
  }
  Object.assign(w, { 'norm.weight': ln(), 'norm.bias': r([D]), 'head.weight': r([c.numClasses, D]), 'head.bias': r([c.numClasses]) });
  if (c.distToken) Object.assign(w, { 'head_dist.weight': r([c.numClasses, D]), 'head_dist.bias': r([c.numClasses]) });
  return w;
}

/**
 * The same weights under Hugging Face transformers' names (query / key / value split), with
 * `prefix` ('vit.', 'deit.' or '' for a bare ViTModel). With `classifier`, a ViTForImageClassification
 * head (`classifier.*`), or for a distilled DeiT, DeiTForImageClassificationWithTeacher's
 * `cls_classifier.*` and `distillation_classifier.*`.
 */
export function hfViTWeights(w: Record<string, Tensor>, c: FixtureViTConfig, prefix = 'vit.', classifier = true): Record<string, Tensor> {
  const D = c.dim;
  const p = prefix;
  const out: Record<string, Tensor> = {
    [`${p}embeddings.patch_embeddings.projection.weight`]: w['patch_embed.proj.weight']!,
    [`${p}embeddings.patch_embeddings.projection.bias`]: w['patch_embed.proj.bias']!,
    [`${p}embeddings.cls_token`]: w['cls_token']!,
    [`${p}embeddings.position_embeddings`]: w['pos_embed']!,
    [`${p}layernorm.weight`]: w['norm.weight']!,
    [`${p}layernorm.bias`]: w['norm.bias']!,
  };
  if (w['dist_token']) out[`${p}embeddings.distillation_token`] = w['dist_token'];
  if (classifier && w['head_dist.weight']) {
    Object.assign(out, {
      'cls_classifier.weight': w['head.weight']!, 'cls_classifier.bias': w['head.bias']!,
      'distillation_classifier.weight': w['head_dist.weight'], 'distillation_classifier.bias': w['head_dist.bias']!,
    });
  } else if (classifier) Object.assign(out, { 'classifier.weight': w['head.weight']!, 'classifier.bias': w['head.bias']! });
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    const l = `${p}encoder.layer.${i}`;
    for (const wb of ['weight', 'bias']) {
      const qkv = w[`${b}.attn.qkv.${wb}`]!;
      ['query', 'key', 'value'].forEach((name, j) => (out[`${l}.attention.attention.${name}.${wb}`] = qkv.narrow(0, j * D, D).contiguous()));
      out[`${l}.layernorm_before.${wb}`] = w[`${b}.norm1.${wb}`]!;
      out[`${l}.attention.output.dense.${wb}`] = w[`${b}.attn.proj.${wb}`]!;
      out[`${l}.layernorm_after.${wb}`] = w[`${b}.norm2.${wb}`]!;
      out[`${l}.intermediate.dense.${wb}`] = w[`${b}.mlp.fc1.${wb}`]!;
      out[`${l}.output.dense.${wb}`] = w[`${b}.mlp.fc2.${wb}`]!;
    }
  }
  return out;
}

/**
 * timm's VisionTransformer.forward (eval mode) from timm-named weights, written from timm's
 * vision_transformer.py / deit.py: patch conv → [cls, (dist,) patches] + pos_embed → blocks
 * x + attn(norm1(x)), x + mlp(norm2(x)) with softmax(q kᵀ / √d) v → norm → head(cls), or for a
 * distilled DeiT (head(cls) + head_dist(dist)) / 2. In float64 unless `dtype` says otherwise.
 */
export function referenceViTLogits(w: Record<string, Tensor>, c: FixtureViTConfig, x: Tensor, eps = 1e-6, dtype: 'float64' | 'float32' = 'float64'): Tensor {
  return tidy(() =>
    noGrad(() => {
      const g = (k: string): Tensor => w[k]!.to(dtype);
      const D = c.dim;
      const Hh = c.heads;
      const hd = D / Hh;
      const B = x.size(0);
      let t = conv2d(x.to(dtype), g('patch_embed.proj.weight'), g('patch_embed.proj.bias'), { stride: c.patchSize }).flatten(2).transpose(1, 2);
      const prefix = [g('cls_token').expand([B, 1, D])];
      if (w['dist_token']) prefix.push(g('dist_token').expand([B, 1, D]));
      t = cat([...prefix, t], 1).add(g('pos_embed'));
      const N = t.size(1);
      for (let i = 0; i < c.depth; i++) {
        const b = `blocks.${i}`;
        const h = layerNorm(t, [D], g(`${b}.norm1.weight`), g(`${b}.norm1.bias`), eps);
        const qkv = linear(h, g(`${b}.attn.qkv.weight`), g(`${b}.attn.qkv.bias`)).reshape([B, N, 3, Hh, hd]).permute([2, 0, 3, 1, 4]);
        const [q, k, v] = [qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2)];
        const attn = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(hd)).softmax(-1);
        const o = attn.matmul(v!).transpose(1, 2).reshape([B, N, D]);
        t = t.add(linear(o, g(`${b}.attn.proj.weight`), g(`${b}.attn.proj.bias`)));
        const h2 = layerNorm(t, [D], g(`${b}.norm2.weight`), g(`${b}.norm2.bias`), eps);
        t = t.add(linear(gelu(linear(h2, g(`${b}.mlp.fc1.weight`), g(`${b}.mlp.fc1.bias`))), g(`${b}.mlp.fc2.weight`), g(`${b}.mlp.fc2.bias`)));
      }
      t = layerNorm(t, [D], g('norm.weight'), g('norm.bias'), eps);
      const cls = linear(t.select(1, 0), g('head.weight'), g('head.bias'));
      if (!w['head_dist.weight']) return cls;
      return cls.add(linear(t.select(1, 1), g('head_dist.weight'), g('head_dist.bias'))).div(2);
    }),
  );
}

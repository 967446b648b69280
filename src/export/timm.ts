// Import of pretrained ViT / DeiT weights from `.safetensors` files into our VisionTransformer, in
// either naming:
//
// - timm's (vit_*, deit_*; the same names our model uses): patch_embed.proj.*, cls_token,
//   dist_token, pos_embed, blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.*,
//   norm.*, head.*, head_dist.*;
// - Hugging Face transformers' (ViTForImageClassification, ViTModel, DeiTForImageClassification
//   [WithTeacher]): <p>embeddings.patch_embeddings.projection.*, <p>embeddings.cls_token,
//   <p>embeddings.distillation_token, <p>embeddings.position_embeddings,
//   <p>encoder.layer.N.{layernorm_before, attention.attention.{query,key,value},
//   attention.output.dense, layernorm_after, intermediate.dense, output.dense}.*, <p>layernorm.*,
//   classifier.* | cls_classifier.* and distillation_classifier.*, with <p> = `vit.`, `deit.` or
//   nothing (a bare ViTModel). Query, key and value are concatenated (in that order) into timm's
//   fused qkv. A ViTModel's `pooler.*` is not part of a classifier and is always ignored.
//
// The naming is detected from the keys. Every problem (missing, unexpected, mis-shaped keys) is
// collected and reported in ONE error naming the file. F16 / BF16 / F64 weights convert to float32.
// A position embedding for another patch grid is resampled as timm's resample_abs_pos_embed does
// (bicubic with antialiasing by default, prefix tokens kept as they are).
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { cat, noGrad, op, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { readSafetensorsFile, readSafetensorsHeader, toFloat32Array, SafetensorsError, type RawTensor, type SafeDType } from './safetensors.js';
import type { VisionTransformer, ViTConfig } from '../models/vit.js';
import { PRESETS, type ViTPresetConfig } from '../models/registry.js';

export type CheckpointNaming = 'timm' | 'hf';

export interface TimmLoadOptions {
  /**
   * With strict (the default) a missing or unexpected key fails the import; without, unexpected
   * keys are ignored (listed in `ignored`) and missing ones keep the model's values (`missing`).
   * A mis-shaped key fails either way.
   */
  strict?: boolean;
  /** Resampling of the position embedding onto another grid: 'bicubic' (timm's default) or 'bilinear'. */
  interpolation?: 'bicubic' | 'bilinear';
  /** Antialiased resampling (timm's default true; it also sets PIL's cubic a = −0.5). */
  antialias?: boolean;
}

export interface TimmLoadResult {
  naming: CheckpointNaming;
  /** The model's state-dict keys that were set from the file. */
  loaded: string[];
  /** True when the checkpoint's position embedding was resampled onto the model's patch grid. */
  interpolatedPosEmbed: boolean;
  /** Checkpoint keys not used (HF `pooler.*` always; any unexpected key with strict: false). */
  ignored: string[];
  /** Model keys the file did not have (only possible with strict: false): they keep their values. */
  missing: string[];
  /** Human-readable notes (the resampling done, the keys ignored). */
  notes: string[];
}

export class TimmImportError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { key: string; checkpointKey: string; expected: number[]; got: number[] }[],
  ) {
    super(message);
    this.name = 'TimmImportError';
  }
}

// ---------------------------------------------------------------------------------------------
// Naming

export interface Naming {
  naming: CheckpointNaming;
  /** HF: the prefix before `embeddings.` / `encoder.` (`vit.`, `deit.` or ''). */
  prefix: string;
}

const HF_RE = /^(.*?)(?:embeddings\.(?:patch_embeddings|cls_token|position_embeddings|distillation_token)|encoder\.layer\.\d+\.)/;

/** Which naming a set of checkpoint keys uses: Hugging Face's if any key is one of its embeddings / encoder layers, else timm's. */
export function detectNaming(keys: readonly string[]): Naming {
  for (const k of keys) {
    const m = HF_RE.exec(k);
    if (m) return { naming: 'hf', prefix: m[1]! };
  }
  return { naming: 'timm', prefix: '' };
}

const FLOAT_DTYPES: ReadonlySet<SafeDType> = new Set<SafeDType>(['F32', 'F16', 'BF16', 'F64']);

/**
 * The checkpoint key(s) holding one of our state-dict keys. Several keys (HF query, key, value)
 * are concatenated along dim 0.
 */
function sourcesOf(modelKey: string, n: Naming, ckptKeys: ReadonlySet<string>): string[] {
  if (n.naming === 'timm') return [modelKey];
  const p = n.prefix;
  const direct: Record<string, string> = {
    cls_token: `${p}embeddings.cls_token`,
    dist_token: `${p}embeddings.distillation_token`,
    pos_embed: `${p}embeddings.position_embeddings`,
  };
  if (direct[modelKey]) return [direct[modelKey]];
  let m = /^patch_embed\.proj\.(weight|bias)$/.exec(modelKey);
  if (m) return [`${p}embeddings.patch_embeddings.projection.${m[1]}`];
  m = /^norm\.(weight|bias)$/.exec(modelKey);
  if (m) return [`${p}layernorm.${m[1]}`];
  m = /^head\.(weight|bias)$/.exec(modelKey);
  if (m) return [ckptKeys.has('cls_classifier.weight') || ckptKeys.has('cls_classifier.bias') ? `cls_classifier.${m[1]}` : `classifier.${m[1]}`];
  m = /^head_dist\.(weight|bias)$/.exec(modelKey);
  if (m) return [`distillation_classifier.${m[1]}`];
  m = /^blocks\.(\d+)\.(.+)\.(weight|bias)$/.exec(modelKey);
  if (m) {
    const [, i, sub, wb] = m as unknown as [string, string, string, string];
    const layer = `${p}encoder.layer.${i}`;
    switch (sub) {
      case 'norm1': return [`${layer}.layernorm_before.${wb}`];
      case 'attn.qkv': return ['query', 'key', 'value'].map((q) => `${layer}.attention.attention.${q}.${wb}`);
      case 'attn.proj': return [`${layer}.attention.output.dense.${wb}`];
      case 'norm2': return [`${layer}.layernorm_after.${wb}`];
      case 'mlp.fc1': return [`${layer}.intermediate.dense.${wb}`];
      case 'mlp.fc2': return [`${layer}.output.dense.${wb}`];
    }
  }
  return [`<no Hugging Face name for ${modelKey}>`];
}

/** Checkpoint keys that are never part of a classifier: a bare HF ViTModel's pooler. */
function alwaysIgnored(key: string, n: Naming): boolean {
  return n.naming === 'hf' && key.startsWith(`${n.prefix}pooler.`);
}

function hasDistToken(keys: ReadonlySet<string>, n: Naming): boolean {
  return n.naming === 'timm' ? keys.has('dist_token') : keys.has(`${n.prefix}embeddings.distillation_token`);
}

const shapeStr = (s: readonly number[]): string => `[${s.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const perfectSquareRoot = (n: number): number | null => {
  const r = Math.round(Math.sqrt(n));
  return r * r === n && r > 0 ? r : null;
};

// ---------------------------------------------------------------------------------------------
// Position-embedding resampling

/**
 * timm's resample_abs_pos_embed: the position embedding [1, prefix + h·w, D] of an h×w patch grid,
 * resampled onto `newGrid` (as an image with D channels; align_corners false); the `numPrefix`
 * prefix tokens (class, distillation) are kept unchanged. The old grid is square unless given.
 * The same grid returns an unchanged copy. Returns a new float32 tensor.
 */
export function resamplePosEmbed(
  posEmbed: Tensor,
  newGrid: number | [number, number],
  numPrefix: number,
  o: { oldGrid?: [number, number]; interpolation?: 'bicubic' | 'bilinear'; antialias?: boolean } = {},
): Tensor {
  const [nh, nw] = typeof newGrid === 'number' ? [newGrid, newGrid] : newGrid;
  const s = posEmbed.shape;
  if (s.length !== 3 || s[0] !== 1) throw new Error(`resamplePosEmbed: expected [1, tokens, dim], got ${shapeStr(s)}`);
  const [, T, D] = s as [number, number, number];
  const n = T - numPrefix;
  let oldGrid = o.oldGrid;
  if (!oldGrid) {
    const r = perfectSquareRoot(n);
    if (r === null) throw new Error(`resamplePosEmbed: ${n} patch tokens (${T} tokens − ${numPrefix} prefix) do not form a square grid; give oldGrid`);
    oldGrid = [r, r];
  }
  const [oh, ow] = oldGrid;
  if (oh * ow !== n) throw new Error(`resamplePosEmbed: old grid ${oh}×${ow} does not hold ${n} patch tokens`);
  return tidy(() =>
    noGrad(() => {
      const x = posEmbed.float();
      if (oh === nh && ow === nw) return x.clone();
      const prefix = x.narrow(1, 0, numPrefix);
      const grid = x.narrow(1, numPrefix, n).reshape([1, oh, ow, D]).permute([0, 3, 1, 2]).contiguous();
      const mode = o.interpolation ?? 'bicubic';
      const aa = o.antialias ?? true;
      const name = mode === 'bicubic' ? (aa ? 'aten::_upsample_bicubic2d_aa' : 'aten::upsample_bicubic2d') : aa ? 'aten::_upsample_bilinear2d_aa' : 'aten::upsample_bilinear2d';
      const resized = op(name, 'vec').t([grid.handle, [nh, nw], false, null]);
      const tokens = resized.permute([0, 2, 3, 1]).reshape([1, nh * nw, D]);
      return numPrefix > 0 ? cat([prefix, tokens], 1) : tokens.contiguous();
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Loading

function toFloatTensor(raw: RawTensor, name: string): Tensor {
  return tensor(toFloat32Array(raw, name), { shape: raw.shape, dtype: 'float32' });
}

/**
 * Loads a timm or Hugging Face ViT / DeiT `.safetensors` file into `model` (whose configuration
 * must match the file's, except the image size: the position embedding is resampled). All
 * problems are reported together in one TimmImportError naming the file.
 */
export function loadTimmViT(path: string, model: VisionTransformer, opts: TimmLoadOptions = {}): TimmLoadResult {
  const strict = opts.strict ?? true;
  if (!existsSync(path)) throw new SafetensorsError(`safetensors ${path}: file not found`, path);
  const { tensors: raw } = readSafetensorsFile(path);
  const ckptKeys = new Set(Object.keys(raw));
  const n = detectNaming([...ckptKeys]);
  const own = model.stateDict();
  const modelPrefix = model.numPrefixTokens;
  const ckptPrefix = 1 + (hasDistToken(ckptKeys, n) ? 1 : 0);
  const grid = model.patchEmbed.gridSize;

  const missing: string[] = [];
  const mismatched: TimmImportError['mismatched'] = [];
  const hints: string[] = [];
  const used = new Set<string>();
  const plan: { key: string; sources: string[]; resample: boolean }[] = [];
  let resampleFrom: number | null = null;

  for (const [key, t] of Object.entries(own)) {
    const sources = sourcesOf(key, n, ckptKeys);
    const absent = sources.filter((s) => !ckptKeys.has(s));
    sources.forEach((s) => ckptKeys.has(s) && used.add(s));
    if (absent.length > 0) {
      missing.push(n.naming === 'timm' ? key : `${key} (checkpoint ${absent.join(', ')})`);
      continue;
    }
    const want = t.shape;
    let bad = false;
    for (const s of sources) {
      const r = raw[s]!;
      if (!FLOAT_DTYPES.has(r.dtype)) {
        mismatched.push({ key, checkpointKey: s, expected: want, got: r.shape });
        hints.push(`${s} has dtype ${r.dtype}, not a float`);
        bad = true;
      }
    }
    if (bad) continue;
    if (sources.length === 3) {
      // HF query / key / value: each a third of the fused qkv along dim 0.
      const part = [want[0]! / 3, ...want.slice(1)];
      for (const s of sources) {
        if (!sameShape(raw[s]!.shape, part)) mismatched.push({ key, checkpointKey: s, expected: part, got: raw[s]!.shape });
      }
      plan.push({ key, sources, resample: false });
      continue;
    }
    const src = sources[0]!;
    const got = raw[src]!.shape;
    if (sameShape(got, want)) {
      plan.push({ key, sources, resample: false });
      continue;
    }
    if (key === 'pos_embed' && got.length === 3 && got[0] === 1 && got[2] === want[2] && ckptPrefix === modelPrefix) {
      const r = perfectSquareRoot(got[1]! - ckptPrefix);
      if (r !== null) {
        resampleFrom = r;
        plan.push({ key, sources, resample: true });
        continue;
      }
    }
    mismatched.push({ key, checkpointKey: src, expected: want, got });
  }

  const unusedKeys = [...ckptKeys].filter((k) => !used.has(k));
  const ignored = unusedKeys.filter((k) => alwaysIgnored(k, n));
  const unexpected = unusedKeys.filter((k) => !alwaysIgnored(k, n));

  // Hints for the usual configuration mistakes.
  if (ckptPrefix !== modelPrefix) {
    hints.push(
      ckptPrefix === 2
        ? 'the checkpoint has a distillation token (a distilled DeiT) but the model has none: create the model with distToken: true'
        : 'the model has a distillation token but the checkpoint has none: create the model with distToken: false',
    );
  }
  const headW = mismatched.find((m) => m.key === 'head.weight');
  if (headW && headW.got.length === 2) hints.push(`the checkpoint's head has ${headW.got[0]} classes, the model's ${headW.expected[0]}: create the model with numClasses: ${headW.got[0]}`);
  for (const wrap of ['module.', 'model.', 'state_dict.']) {
    const stripped = unexpected.filter((k) => k.startsWith(wrap) && Object.prototype.hasOwnProperty.call(own, k.slice(wrap.length)));
    if (stripped.length > 0 && stripped.length >= missing.length / 2) hints.push(`the checkpoint's keys carry a '${wrap}' prefix (a wrapped / DDP state dict): strip it before importing`);
  }
  const headSrc = sourcesOf('head.weight', n, ckptKeys)[0]!;
  if (!('head.weight' in own) && unexpected.includes(headSrc)) {
    hints.push(`the checkpoint has a ${raw[headSrc]!.shape[0]}-class head but the model has none (numClasses 0): create it with numClasses: ${raw[headSrc]!.shape[0]}, or load with strict: false to drop the head`);
  }
  const patchW = mismatched.find((m) => m.key === 'patch_embed.proj.weight');
  if (patchW && patchW.got.length === 4) {
    hints.push(`the checkpoint's patch embedding is ${patchW.got[0]} wide, ${patchW.got[1]} input channels, patch ${patchW.got[2]}; the model's ${patchW.expected[0]}, ${patchW.expected[1]}, ${patchW.expected[2]}`);
  }

  if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
    const lines: string[] = [];
    if (missing.length) lines.push(`missing keys (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length) lines.push(`unexpected keys (${unexpected.length}): ${unexpected.join(', ')}`);
    for (const m of mismatched) {
      const via = m.checkpointKey === m.key ? m.key : `${m.key} (checkpoint ${m.checkpointKey})`;
      lines.push(`shape mismatch for ${via}: model has ${shapeStr(m.expected)}, checkpoint has ${shapeStr(m.got)}`);
    }
    for (const h of hints) lines.push(`hint: ${h}`);
    throw new TimmImportError(
      `cannot load ${basename(path)} (${n.naming === 'timm' ? 'timm' : 'Hugging Face'} naming) into the ViT: ${path}\n  ${lines.join('\n  ')}`,
      path,
      missing,
      unexpected,
      mismatched,
    );
  }

  const notes: string[] = [];
  const loaded: string[] = [];
  const state: Record<string, Tensor> = {};
  try {
    tidy(() => {
      for (const { key, sources, resample } of plan) {
        const parts = sources.map((s) => toFloatTensor(raw[s]!, s));
        let t = parts.length === 1 ? parts[0]! : cat(parts, 0);
        if (resample) {
          t = resamplePosEmbed(t, grid, modelPrefix, { interpolation: opts.interpolation, antialias: opts.antialias });
          notes.push(
            `pos_embed resampled from a ${resampleFrom}×${resampleFrom} to a ${grid}×${grid} patch grid (${opts.interpolation ?? 'bicubic'}${(opts.antialias ?? true) ? ', antialiased' : ''}), ${modelPrefix} prefix token${modelPrefix > 1 ? 's' : ''} kept`,
          );
        }
        state[key] = t;
        loaded.push(key);
      }
      model.loadStateDict(state, { strict: false });
    });
  } finally {
    for (const t of Object.values(state)) t.dispose();
  }
  const ignoredAll = [...ignored, ...(strict ? [] : unexpected)];
  if (ignoredAll.length > 0) notes.push(`ignored checkpoint keys: ${ignoredAll.join(', ')}`);
  if (missing.length > 0) notes.push(`not in the checkpoint (model values kept): ${missing.join(', ')}`);
  return { naming: n.naming, loaded, interpolatedPosEmbed: resampleFrom !== null, ignored: ignoredAll, missing, notes };
}

// ---------------------------------------------------------------------------------------------
// Configuration from a file

/** The fields of a Hugging Face ViTConfig / DeiTConfig (config.json) the import reads; all optional. */
export interface HfViTConfigJson {
  model_type?: string;
  hidden_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  intermediate_size?: number;
  hidden_act?: string;
  layer_norm_eps?: number;
  image_size?: number;
  patch_size?: number;
  num_channels?: number;
  qkv_bias?: boolean;
  /** Class names by index ("0": "tench", …). */
  id2label?: Record<string, string>;
}

/** The hint for a missing head count: timm's ViT / DeiT models all use head width 64. */
export function headsGuess(dim: number): string {
  return dim % 64 === 0 ? ` (the ViT / DeiT models of timm use head width 64, which would give heads = ${dim / 64} for width ${dim})` : '';
}

/**
 * Class names by index from a Hugging Face config's id2label, or null when it has none or its keys
 * are not exactly 0 … n−1.
 */
export function hfClassNames(cfg: HfViTConfigJson): string[] | null {
  const m = cfg.id2label;
  if (!m || typeof m !== 'object') return null;
  const n = Object.keys(m).length;
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = m[String(i)];
    if (typeof v !== 'string') return null;
    names.push(v);
  }
  return n > 0 ? names : null;
}

export interface TimmFileConfig {
  naming: CheckpointNaming;
  /** A VisionTransformer configuration matching the file (imageSize = grid × patch). */
  config: ViTPresetConfig;
  /** How each value was found. */
  notes: string[];
}

/**
 * Infers a ViT configuration from a timm / Hugging Face `.safetensors` file's tensor shapes (only
 * the header is read): width, input channels and patch size from the patch embedding, depth from
 * the block indices, MLP ratio from fc1, qkv bias, classes from the head (0 if none), the
 * distillation token, and the image size from the position embedding's grid. The number of heads
 * is not in the shapes: give `heads`, or a `preset` whose heads (and width, depth, patch) it uses.
 * LayerNorm epsilon is not either: timm's ViTs use 1e-6, Hugging Face's ViT / DeiT 1e-12 (their
 * configs' default), and that is what is returned for each naming.
 * A Hugging Face config.json (`hfConfig`) supplies the heads (num_attention_heads) and epsilon
 * (layer_norm_eps); its other sizes must agree with the shapes (else an error naming both).
 */
export function timmConfigFromFile(path: string, opts: { heads?: number; preset?: string; hfConfig?: HfViTConfigJson } = {}): TimmFileConfig {
  if (!existsSync(path)) throw new SafetensorsError(`safetensors ${path}: file not found`, path);
  const { entries } = readSafetensorsHeader(path);
  const keys = new Set(Object.keys(entries));
  const n = detectNaming([...keys]);
  const name = (modelKey: string): string => sourcesOf(modelKey, n, keys)[0]!;
  const shapeOf = (modelKey: string): number[] | undefined => entries[name(modelKey)]?.shape;
  const fail = (msg: string): never => {
    throw new Error(`timmConfigFromFile ${path}: ${msg}`);
  };

  const pw = shapeOf('patch_embed.proj.weight');
  if (!pw || pw.length !== 4 || pw[2] !== pw[3]) fail(`no square patch embedding ${name('patch_embed.proj.weight')} [dim, channels, p, p] (is this a ViT checkpoint?)`);
  const [dim, inChannels, patchSize] = pw as [number, number, number, number];

  const blockRe = n.naming === 'timm' ? /^blocks\.(\d+)\./ : new RegExp(`^${n.prefix.replace(/\./g, '\\.')}encoder\\.layer\\.(\\d+)\\.`);
  let depth = 0;
  for (const k of keys) {
    const m = blockRe.exec(k);
    if (m) depth = Math.max(depth, Number(m[1]) + 1);
  }
  if (depth === 0) fail('no transformer blocks found');

  const fc1 = shapeOf('blocks.0.mlp.fc1.weight');
  if (!fc1 || fc1.length !== 2) fail(`no ${name('blocks.0.mlp.fc1.weight')}`);
  const mlpRatio = fc1![0]! / dim;
  const qkvBias = keys.has(name('blocks.0.attn.qkv.bias'));
  const distToken = hasDistToken(keys, n);
  const head = shapeOf('head.weight');
  const numClasses = head ? head[0]! : 0;
  const pos = shapeOf('pos_embed');
  if (!pos || pos.length !== 3) fail(`no position embedding ${name('pos_embed')} [1, tokens, dim]`);
  const prefix = distToken ? 2 : 1;
  const g = perfectSquareRoot(pos![1]! - prefix);
  if (g === null) fail(`position embedding ${shapeStr(pos!)} minus ${prefix} prefix token(s) is not a square patch grid`);
  const imageSize = g! * patchSize;
  const layerNormEps = n.naming === 'timm' ? 1e-6 : 1e-12;

  const notes = [
    `${n.naming === 'timm' ? 'timm' : `Hugging Face (prefix '${n.prefix}')`} naming`,
    `dim ${dim}, ${inChannels} channels, patch ${patchSize} from ${name('patch_embed.proj.weight')} ${shapeStr(pw!)}`,
    `depth ${depth}, mlpRatio ${mlpRatio}, qkv bias ${qkvBias}`,
    `image ${imageSize} = ${g}×${g} grid × patch ${patchSize}, from ${name('pos_embed')} ${shapeStr(pos!)}`,
    `${numClasses} classes${head ? '' : ' (no head in the file)'}, distillation token ${distToken}`,
  ];
  if (opts.hfConfig?.layer_norm_eps === undefined) notes.push(`layerNormEps ${layerNormEps} (not in the file: ${n.naming === 'timm' ? "timm's ViT default" : "Hugging Face's ViTConfig default"})`);

  let heads = opts.heads;
  let eps = layerNormEps;
  const hf = opts.hfConfig;
  if (hf) {
    // config.json must describe this file: a disagreement means the wrong config beside the weights.
    const fromShapes: Record<string, number | boolean> = { hidden_size: dim, num_hidden_layers: depth, patch_size: patchSize, num_channels: inChannels, intermediate_size: fc1![0]!, qkv_bias: qkvBias };
    const bad = Object.entries(fromShapes).filter(([k, v]) => hf[k as keyof HfViTConfigJson] !== undefined && hf[k as keyof HfViTConfigJson] !== v);
    if (bad.length > 0) fail(`config.json does not describe this file: ${bad.map(([k, v]) => `${k} ${String(hf[k as keyof HfViTConfigJson])} in config.json vs ${String(v)} in the weights`).join(', ')}`);
    if (hf.image_size !== undefined && hf.image_size !== imageSize) notes.push(`config.json's image_size ${hf.image_size} differs from the ${imageSize} of the position embedding: ${imageSize} is used (the grid the weights were trained at)`);
    if (hf.hidden_act !== undefined && hf.hidden_act !== 'gelu') fail(`hidden_act '${hf.hidden_act}' in config.json: only 'gelu' (exact, as timm's ViT / DeiT) is supported`);
    if (hf.num_attention_heads !== undefined) {
      if (heads !== undefined && heads !== hf.num_attention_heads) fail(`heads ${heads} given, but config.json says num_attention_heads ${hf.num_attention_heads}`);
      heads = hf.num_attention_heads;
      notes.push(`heads ${heads} from config.json (num_attention_heads)`);
    }
    if (hf.layer_norm_eps !== undefined) {
      eps = hf.layer_norm_eps;
      notes.push(`layerNormEps ${eps} from config.json (layer_norm_eps)`);
    }
  }
  if (opts.preset !== undefined) {
    const p = PRESETS[opts.preset];
    if (!p) throw new Error(`timmConfigFromFile: unknown preset '${opts.preset}'; available: ${Object.keys(PRESETS).join(', ')}`);
    if (p.family !== 'vit') fail(`preset '${opts.preset}' is a ${p.family}, not a ViT`);
    const pc = p.config as ViTPresetConfig;
    const diff = (['dim', 'depth', 'patchSize'] as const).filter((k) => pc[k] !== { dim, depth, patchSize }[k]);
    if (diff.length > 0) fail(`preset '${opts.preset}' does not describe this file: ${diff.map((k) => `${k} ${pc[k]} vs ${{ dim, depth, patchSize }[k]} in the file`).join(', ')}`);
    if (heads === undefined) {
      heads = pc.heads;
      notes.push(`heads ${heads} from preset '${opts.preset}'`);
    }
  } else if (heads !== undefined && hf?.num_attention_heads === undefined) {
    notes.push(`heads ${heads} given`);
  }
  if (heads === undefined) fail(`the number of attention heads cannot be inferred from tensor shapes: pass { heads } or { preset }${headsGuess(dim)}`);
  if (dim % heads! !== 0) fail(`width ${dim} is not divisible by ${heads} heads`);

  const config: ViTPresetConfig & Partial<ViTConfig> = { imageSize, inChannels, patchSize, numClasses, dim, depth, heads: heads!, mlpRatio, qkvBias, distToken, layerNormEps: eps };
  return { naming: n.naming, config, notes };
}

// ---------------------------------------------------------------------------------------------
// Input normalisation

/**
 * Named input normalisations of timm (timm/data/constants.py): IMAGENET_DEFAULT_* (DeiT, most
 * ImageNet-1k models) and IMAGENET_INCEPTION_* (0.5 / 0.5: the original ViT and the augreg ViTs).
 */
export const NAMED_NORMALIZATIONS: Readonly<Record<string, { mean: readonly number[]; std: readonly number[] }>> = Object.freeze({
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  inception: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
});

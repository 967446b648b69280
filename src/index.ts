// vit-dfkd: data-free distillation of Vision Transformers, on libtorch, from TypeScript.
export * from './tensor/index.js';
export * from './testing/gradcheck.js';
export * as nn from './nn/index.js';
export * from './data/index.js';
export * from './models/registry.js';
export type { Classifier } from './models/types.js';
export * from './export/checkpoint.js';
// Teachers from timm / Hugging Face ViT and DeiT checkpoints (README "Bring your own teacher").
export { VisionTransformer, type ViTConfig } from './models/vit.js';
export {
  loadTimmViT, timmConfigFromFile, detectNaming, resamplePosEmbed, hfClassNames, NAMED_NORMALIZATIONS, TimmImportError,
  type CheckpointNaming, type TimmLoadOptions, type TimmLoadResult, type TimmFileConfig, type HfViTConfigJson,
} from './export/timm.js';
export { loadTeacher, importTeacher, loadClassifier, foreignCheckpoint, type TeacherImportOptions, type LoadedTeacher, type ForeignCheckpoint, type ModelCard } from './models/load.js';

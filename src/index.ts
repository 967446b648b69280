// vit-dfkd: data-free distillation of Vision Transformers, on libtorch, from TypeScript.
export * from './tensor/index.js';
export * from './testing/gradcheck.js';
export * as nn from './nn/index.js';
export * from './data/index.js';
export * from './models/registry.js';
export type { Classifier } from './models/types.js';
export * from './export/checkpoint.js';

export * from './tensor.js';
export * as F from './functional.js';

export * from './module.js';
export * from './layers.js';
export * from './attention.js';
export * as init from './init.js';

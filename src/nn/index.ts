export * from './module.js';
export * from './layers.js';
export * from './attention.js';
export * as init from './init.js';
export * from './optim.js';
export * from './schedule.js';
export * from './clip.js';

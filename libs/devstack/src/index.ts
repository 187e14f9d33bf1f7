export * from './util';
export * from './openbao';
export * from './redis';
export * from './redis-topologies';

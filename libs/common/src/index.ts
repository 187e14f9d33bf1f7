export * from './errors';
export * from './redact';
export * from './duration';
export * from './logging';
export * from './nest-logger';
export * from './shutdown';
export * from './token-bucket';
export * from './metrics';

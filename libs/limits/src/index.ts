export * from './specs';
export * from './redis-store';
export * from './local';
export * from './limiter';
export * from './limits.module';
export * from './plan';

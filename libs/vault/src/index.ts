export * from './vault.types';
export * from './vault.errors';
export * from './vault.transport';
export * from './vault.hot-lookup';
export * from './token-source';
export * from './vault.client';
export * from './vault.module';
export * from './bootstrap';

export * from './verify-cache';
export * from './hot-metrics';
export * from './key-entries';
export * from './lookup-budget';
export * from './verify.service';
export * from './verify.module';

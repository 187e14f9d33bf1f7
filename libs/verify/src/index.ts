export * from './verify-cache';
export * from './key-entries';
export * from './lookup-budget';
export * from './verify.service';
export * from './verify.module';

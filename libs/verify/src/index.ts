export * from './verify-cache';
export * from './lookup-budget';
export * from './verify.service';
export * from './verify.module';

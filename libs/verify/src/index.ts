export * from './verify-cache';
export * from './verify.service';
export * from './verify.module';

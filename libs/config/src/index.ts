export * from './config';
export * from './config.module';
export { IsDuration } from './env.schema';

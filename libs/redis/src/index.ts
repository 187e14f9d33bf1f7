export * from './redis';
export * from './redis.module';
export * from './lease';
export * from './lex-page';
export * from './subscriber';

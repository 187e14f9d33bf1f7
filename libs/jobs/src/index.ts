export * from './jobs';
export * from './jobs.producer';

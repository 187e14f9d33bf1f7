export * from './jobs';
export * from './jobs.producer';
export * from './schedules';
export * from './queue-view';
export * from './jobs.module';
export * from './vault-cluster';
export * from './metrics';

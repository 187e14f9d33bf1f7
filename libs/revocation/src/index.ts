export * from './revocation-bus';
export * from './revocation-subscriber';
export * from './revocation.module';

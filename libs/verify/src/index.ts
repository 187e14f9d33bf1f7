export * from './revocation-bus';

export * from './admin-audit';
export * from './audit-line';
export * from './audit-keys';
export * from './ingester';
export * from './usage';
export * from './events';
export * from './metrics';
export * from './audit.module';

export * from './admin-audit';

export * from './authz.service';
export * from './authz.module';
export * from './key-identity';
export * from './cert-binding';

export * from './authz.service';
export * from './authz.module';

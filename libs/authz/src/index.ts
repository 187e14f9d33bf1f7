export * from './authz.service';

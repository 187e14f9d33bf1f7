export * from './app-registry';
export * from './apps.service';
export * from './apps.module';

export * from './signing';
export * from './delivery.service';
export * from './delivery.module';

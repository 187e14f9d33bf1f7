export * from './signing';
export * from './delivery.service';
export * from './delivery-history';
export * from './successor-delivery';
export * from './delivery.module';
export * from './webhook-address';

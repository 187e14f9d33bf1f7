export * from './format';
export * from './cidr';
export * from './profiles.service';
export * from './key-index';
export * from './idempotency';
export * from './keys.service';
export * from './keys.module';
export * from './profile-admin.service';

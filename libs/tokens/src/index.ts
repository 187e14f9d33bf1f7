export * from './jwt';
export * from './keyring';
export * from './tokens.module';

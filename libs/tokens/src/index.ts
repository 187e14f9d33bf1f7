export * from './jwt';
export * from './keyring';
export * from './rotation';
export * from './tokens.module';

/** Three tiers: unit (pure logic), integration (libs against real OpenBao + Redis), e2e (HTTP and processes). */
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2022',
        keepClassNames: true,
        // Rewrites @latchkey/* at transform time, so jest's globalSetup (which ignores moduleNameMapper) resolves them too.
        baseUrl: __dirname,
        paths: { '@latchkey/*': ['libs/*/src'] },
      },
      module: { type: 'commonjs' },
    },
  ],
};
const moduleNameMapper = { '^@latchkey/([a-z-]+)$': '<rootDir>/libs/$1/src' };
const common = {
  rootDir: __dirname,
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/.latchkey/'],
  watchPathIgnorePatterns: ['<rootDir>/.latchkey/'],
  transform, moduleNameMapper, testEnvironment: 'node', moduleFileExtensions: ['ts', 'js', 'json'] };

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/libs/**/*.int-spec.ts', '<rootDir>/apps/**/*.int-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      slowTestThreshold: 30,
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      slowTestThreshold: 30,
    },
    {
      ...common,
      displayName: 'reliability',
      testMatch: ['<rootDir>/test/reliability/**/*.rel-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      slowTestThreshold: 120,
    },
  ],
  testTimeout: 60_000,
  // A child process leaked by a failing beforeAll (an OpenBao or api that never got its stop())
  // kept jest alive after the last suite until CI's 90-minute limit. The results are final once
  // the last suite reports, so a leaked handle must not turn a red run into a hung one.
  forceExit: true,
};

import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '@latchkey/config';
import { projectRoot } from '@latchkey/devstack';
import { createApp } from '../../../apps/api/src/app.factory';

/**
 * Writes the api's OpenAPI document to libs/client/openapi.json without a running server, Vault or Redis:
 * the document is built by createApp from the controllers' decorators, and `inject` answers /openapi.json
 * without app.init() (init would open the Redis and Vault connections this offline tool must not need).
 * The addresses below are deliberately unreachable; the token is a placeholder, not a credential.
 */
export async function buildOpenApiDocument(): Promise<unknown> {
  const config = loadConfig({
    ...process.env,
    VAULT_ADDR: 'http://127.0.0.1:1',
    VAULT_TOKEN: 'offline-openapi-placeholder',
    REDIS_URL: 'redis://127.0.0.1:1',
    LOG_LEVEL: 'fatal',
  });
  const app = await createApp(config);
  try {
    const res = await app.getHttpAdapter().getInstance().inject({ method: 'GET', url: '/openapi.json' });
    if (res.statusCode !== 200) throw new Error(`GET /openapi.json answered ${res.statusCode}`);
    return JSON.parse(res.body) as unknown;
  } finally {
    await app.close();
  }
}

/** The committed document the client's types are generated from. */
export const OPENAPI_PATH = path.join(projectRoot(), 'libs', 'client', 'openapi.json');

async function main(): Promise<void> {
  const doc = await buildOpenApiDocument();
  fs.writeFileSync(OPENAPI_PATH, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`wrote ${OPENAPI_PATH}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`client:openapi failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}

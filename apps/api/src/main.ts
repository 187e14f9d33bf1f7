import 'reflect-metadata';
import { loadConfigOrExit } from '@latchkey/config';
import { createApp } from './app.factory';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const app = await createApp(config);
  await app.listen(config.http.port, config.http.host);
  app.getHttpAdapter().getInstance().log.info({ url: await app.getUrl() }, 'latchkey api listening');
}

main().catch((err: unknown) => {
  // Configuration errors already exited; anything here is a start-up failure.
  process.stderr.write(`latchkey api failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});

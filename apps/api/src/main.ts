import 'reflect-metadata';
import { exitOnSignals } from '@latchkey/common';
import { loadConfigOrExit } from '@latchkey/config';
import { createApp } from './app.factory';
import { startMtlsListener } from './certs/mtls-listener';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const app = await createApp(config);
  await app.listen(config.http.port, config.http.host);
  const log = app.getHttpAdapter().getInstance().log;
  log.info({ url: await app.getUrl() }, 'latchkey api listening');
  const mtls = await startMtlsListener(app, config);
  if (mtls) log.info({ url: mtls.url }, 'latchkey mTLS listener listening');
  exitOnSignals(async () => {
    await mtls?.close();
    await app.close();
  }, config.http.shutdownGraceMs, (m) => log.info(m));
}

main().catch((err: unknown) => {
  // Configuration errors already exited; anything here is a start-up failure.
  process.stderr.write(`latchkey api failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});

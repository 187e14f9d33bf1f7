import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import pino from 'pino';
import { exitOnSignals, PinoNestLogger, pinoOptions } from '@latchkey/common';
import { loadConfigOrExit } from '@latchkey/config';
import { WorkerModule } from './worker.module';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const log = pino(pinoOptions(config.logLevel, 'latchkey-worker'));
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), { logger: new PinoNestLogger(log) });
  // SIGTERM/SIGINT: close workers (running jobs finish), then exit.
  exitOnSignals(() => app.close(), config.http.shutdownGraceMs, (m) => log.info(m));
  log.info('latchkey worker started');
}

main().catch((err: unknown) => {
  process.stderr.write(`latchkey worker failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});

import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { register } from 'prom-client';
import { ingestMetrics, registerIngestBacklogGauge } from '@latchkey/audit';
import { enableProcessMetrics } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JobsProducer, jobMetrics, registerQueueGauges } from '@latchkey/jobs';
import { KeyIndex, registerKeyExpiryGauge } from '@latchkey/keys';
import { AuditIngestJob } from './audit/audit-worker.module';
import { refusedJobsCounter } from './worker.service';

/**
 * The worker's own Prometheus endpoint (WORKER_METRICS_HOST:WORKER_METRICS_PORT,
 * GET /metrics; off with port 0): process metrics, jobs run here (durations,
 * failures, refusals), audit ingestion, and — read from Redis at scrape time —
 * queue depths and keys nearing expiry. A plain node:http listener: it serves
 * one read-only document and must not pull an HTTP framework into the worker.
 * Binding fails the start (a worker nobody can scrape is a silent one).
 */
@Injectable()
export class WorkerMetrics implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WorkerMetrics.name);
  private server?: Server;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    jobs: JobsProducer,
    index: KeyIndex,
    audit: AuditIngestJob,
  ) {
    enableProcessMetrics();
    // Created up front so that a scrape lists every family before the first job runs.
    jobMetrics.consuming().set(0);
    jobMetrics.duration();
    jobMetrics.failures();
    refusedJobsCounter();
    for (const make of Object.values(ingestMetrics)) make();
    registerQueueGauges((name) => jobs.queue(name));
    registerKeyExpiryGauge(index);
    registerIngestBacklogGauge(() => audit.backlogBytes());
  }

  async onApplicationBootstrap(): Promise<void> {
    const listen = this.config.jobs.metrics;
    if (!listen) return;
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      register.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': register.contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: Error) => {
          this.logger.warn(`metrics scrape failed: ${err.message}`);
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
        },
      );
    });
    // A scraper holds keep-alive connections open; do not let them hold up shutdown.
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(`worker metrics listener on ${listen.host}:${listen.port}: ${err.code ?? err.message} (set WORKER_METRICS_PORT, 0 = off)`)),
      );
      server.listen(listen.port, listen.host, () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    this.logger.log(`metrics on http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { register } from 'prom-client';
import { enableProcessMetrics } from '@latchkey/common';

/** Prometheus exposition of the process-wide registry. */
@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor() {
    enableProcessMetrics();
  }

  @Get()
  @Header('Cache-Control', 'no-store')
  async metrics(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    void reply.header('Content-Type', register.contentType);
    return register.metrics();
  }
}

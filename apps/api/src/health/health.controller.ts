import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { Redis } from 'ioredis';
import { REDIS } from '@latchkey/redis';
import { VaultClient } from '@latchkey/vault';
import { ShutdownState } from './shutdown-state';

/**
 * Liveness says the process serves HTTP; readiness says it can do its job:
 * Vault answers and is unsealed, Redis answers, and it is not shutting down.
 */
@ApiExcludeController()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly vault: VaultClient,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly shutdown: ShutdownState,
  ) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    try {
      return await this.health.check([() => this.checkVault(), () => this.checkRedis(), () => this.checkShutdown()]);
    } catch (err) {
      // Terminus throws a 503 carrying the full report; answer with the report itself.
      void reply.status(503).header('Retry-After', '2');
      return (err as { getResponse?: () => unknown }).getResponse?.() ?? { status: 'error' };
    }
  }

  private async checkVault() {
    const i = this.indicator.check('vault');
    try {
      const h = await this.vault.health(1500);
      if (!h.initialized) return i.down({ message: 'not initialised' });
      if (h.sealed) return i.down({ message: 'sealed' });
      return i.up({ version: h.version, standby: h.standby });
    } catch (err) {
      return i.down({ message: (err as Error).message });
    }
  }

  private async checkRedis() {
    const i = this.indicator.check('redis');
    try {
      const pong = await Promise.race([
        this.redis.ping(),
        new Promise<string>((_, rej) => setTimeout(() => rej(new Error('timeout')), 1000).unref()),
      ]);
      return pong === 'PONG' ? i.up() : i.down({ message: String(pong) });
    } catch (err) {
      return i.down({ message: (err as Error).message });
    }
  }

  private checkShutdown() {
    const i = this.indicator.check('lifecycle');
    return this.shutdown.stopping ? i.down({ message: 'shutting down' }) : i.up();
  }
}

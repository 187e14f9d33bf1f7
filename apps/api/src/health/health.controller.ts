import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { TokenBucket } from '@latchkey/common';
import { REDIS, RedisClient } from '@latchkey/redis';
import { VaultClient } from '@latchkey/vault';
import { ShutdownState } from './shutdown-state';

/**
 * Readiness needs no credential, so each fresh check (one Vault and one Redis call) is rationed: a flood of
 * probes must not become a flood against Vault, where it could also spend latchkey's own rate-limit quota.
 */
const FRESH_CHECKS_PER_SECOND = 10;

/**
 * Liveness says the process serves HTTP; readiness says it can do its job:
 * Vault answers and is unsealed, Redis answers, and it is not shutting down.
 */
@ApiExcludeController()
@Controller('health')
export class HealthController {
  private readonly fresh = new TokenBucket(FRESH_CHECKS_PER_SECOND);
  private running: Promise<HealthIndicatorResult[]> | null = null;
  private last: Promise<HealthIndicatorResult[]> | null = null;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly vault: VaultClient,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly shutdown: ShutdownState,
  ) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    try {
      const [vault, redis] = await this.dependencies();
      return await this.health.check([() => vault, () => redis, () => this.checkShutdown()]);
    } catch (err) {
      // Terminus throws a 503 carrying the full report; answer with the report itself.
      void reply.status(503).header('Retry-After', '2');
      return (err as { getResponse?: () => unknown }).getResponse?.() ?? { status: 'error' };
    }
  }

  /** Concurrent probes share one check; beyond the ration they get the last answer. Shutting down is always current. */
  private dependencies(): Promise<HealthIndicatorResult[]> {
    if (this.running) return this.running;
    if (this.last && !this.fresh.tryTake()) return this.last;
    const run = Promise.all([this.checkVault(), this.checkRedis()]);
    this.running = run;
    void run.finally(() => {
      this.running = null;
      this.last = run;
    });
    return run;
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

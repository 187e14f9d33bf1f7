import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JobsProducer, ScheduleSpec, schedules } from '@latchkey/jobs';

/**
 * Registers every periodic job with BullMQ's `upsertJobScheduler` at each
 * worker start, so a Redis flush or a restart loses nothing and several
 * workers upserting the same scheduler never duplicate it. When Redis is down
 * at start, registration retries in the background.
 */
@Injectable()
export class SchedulerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SchedulerService.name);
  private retry?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly jobs: JobsProducer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.registerAll();
  }

  private async registerAll(): Promise<void> {
    try {
      for (const s of schedules(this.config)) await this.register(s);
    } catch (err) {
      if (this.stopped) return;
      this.logger.warn(`could not register job schedulers (retrying in 5s): ${(err as Error).message}`);
      this.retry = setTimeout(() => void this.registerAll(), 5000);
      this.retry.unref();
    }
  }

  private async register(s: ScheduleSpec): Promise<void> {
    if (s.everyMs <= 0) {
      await this.jobs.removeScheduler(s.id, s.job);
      this.logger.log(`scheduler ${s.id} disabled`);
      return;
    }
    await this.jobs.upsertScheduler(s.id, s.job, s.everyMs, { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 500 } });
    this.logger.log(`scheduler ${s.id}: ${s.job} every ${s.everyMs} ms`);
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
  }
}

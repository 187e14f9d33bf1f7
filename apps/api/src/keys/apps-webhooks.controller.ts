import { Controller, Get, HttpCode, Module, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AuthzPath, AuthzService, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { DELIVERY_HISTORY_MAX, DELIVERY_HISTORY_TTL_SECONDS, DeliveryHistory, DeliveryModule, DeliveryService, WEBHOOK_TEST_INTERVAL_SECONDS, WEBHOOK_TESTS_PER_MINUTE } from '@latchkey/delivery';
import { APP_ID_RE } from '@latchkey/keys';
import { ApiAuthModule } from '../auth/auth.module';
import { Caller, CallerGuard } from '../auth/caller.guard';
import { ApiErrors, ErrorResponse } from '../http/api-errors';
import { DeliveriesQuery, DeliveriesResponse, WebhookTestResponse } from './apps-webhooks.dto';

/**
 * How an app's rotated keys reached (or did not reach) their owner: a test event for the webhook and the
 * delivery history. Setting the webhook itself is in admin/admin.controller.ts.
 */
@ApiTags('delivery')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(400, 401, 403)
@UseGuards(CallerGuard)
@Controller('v1/apps/:appId')
export class AppDeliveryController {
  constructor(
    private readonly authz: AuthzService,
    private readonly delivery: DeliveryService,
    private readonly deliveries: DeliveryHistory,
  ) {}

  @Post('webhook/test')
  @HttpCode(200)
  @ApiOperation({
    summary: "Send a signed test event to the app's webhook",
    description: `A \`webhook.test\` event (ids and a timestamp; no key, no wrapping token) signed like every delivery, sent once, now, to the configured URL only, with the same address rules and pinned connection; no retry, no redirect. 200 with the outcome (the receiver's status code, latency) whether or not the receiver took it. One test per app per ${WEBHOOK_TEST_INTERVAL_SECONDS} s and ${WEBHOOK_TESTS_PER_MINUTE} per minute in the deployment (429 RATE_LIMITED). Needs update on latchkey/apps/<appId>/webhook, the right to set the webhook.`,
  })
  @ApiResponse({ status: 200, type: WebhookTestResponse })
  @ApiErrors(404)
  @ApiResponse({ status: 429, type: ErrorResponse, description: `RATE_LIMITED: a test of this app less than ${WEBHOOK_TEST_INTERVAL_SECONDS} s ago, or ${WEBHOOK_TESTS_PER_MINUTE} in the deployment this minute (Retry-After set)` })
  async test(@Caller() caller: Principal, @Param('appId') appId: string): Promise<WebhookTestResponse> {
    await this.check(caller, appId, 'update', AuthzPath.appWebhook(appId));
    const out = await this.delivery.sendTest(appId);
    return { appId, url: out.url, eventId: out.eventId, status: out.status, httpStatus: out.httpStatus, latencyMs: out.latencyMs, ...(out.error ? { error: out.error } : {}) };
  }

  @Get('deliveries')
  @ApiOperation({
    summary: "The app's delivery history, newest first",
    description: `Each Vault KV write, webhook attempt (status, HTTP status, latency, error), skipped delivery and test event, with event type, trigger and key ids — never a key, a wrapping token or the signing secret. The last ${DELIVERY_HISTORY_MAX} entries, kept ${DELIVERY_HISTORY_TTL_SECONDS / 86400} days after the newest. Needs read on latchkey/apps/<appId>/keys.`,
  })
  @ApiResponse({ status: 200, type: DeliveriesResponse })
  async history(@Caller() caller: Principal, @Param('appId') appId: string, @Query() q: DeliveriesQuery, @Res({ passthrough: true }) reply: FastifyReply): Promise<DeliveriesResponse> {
    await this.check(caller, appId, 'read', AuthzPath.appKeys(appId));
    void reply.header('Cache-Control', 'no-store');
    return { appId, items: await this.deliveries.list(appId, q.limit ?? 50) };
  }

  private async check(caller: Principal, appId: string, cap: 'read' | 'update', path: string): Promise<void> {
    if (!APP_ID_RE.test(appId)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'appId must be 1-63 of a-z 0-9 _ -, starting with a letter or digit');
    await this.authz.require(caller, path, cap);
  }
}

/** The delivery routes of an app (test event, history). */
@Module({ imports: [DeliveryModule, ApiAuthModule], controllers: [AppDeliveryController] })
export class AppDeliveryHttpModule {}

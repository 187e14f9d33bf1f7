import { Body, Controller, Delete, Get, HttpCode, Param, Put, Query, Res, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AuthzPath, AuthzService, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { DeliveryService } from '@latchkey/delivery';
import { QueueInspector } from '@latchkey/jobs';
import { APP_ID_RE } from '@latchkey/keys';
import { Caller, CallerGuard } from '../auth/caller.guard';
import { ApiErrors } from '../http/api-errors';
import { PutWebhookDto, QueuesQuery, QueuesResponse, WebhookResponse, WebhookSecretResponse } from './admin.dto';

/** Read-only queue view for operators (same authorization as audit events: read on latchkey/audit). */
@ApiTags('admin')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(401, 403)
@UseGuards(CallerGuard)
@Controller('v1/admin')
export class AdminQueuesController {
  constructor(
    private readonly authz: AuthzService,
    private readonly queues: QueueInspector,
  ) {}

  @Get('queues')
  @ApiOperation({ summary: 'Queue counts, schedulers and recent failed jobs', description: 'Ids, names and failure reasons only, never job data. Needs read on latchkey/audit.' })
  @ApiResponse({ status: 200, type: QueuesResponse })
  async list(@Caller() caller: Principal, @Query() q: QueuesQuery): Promise<QueuesResponse> {
    await this.authz.require(caller, AuthzPath.audit, 'read');
    return { queues: await this.queues.view(q.failedLimit ?? 20) };
  }
}

/** Per-app webhook for delivery of rotated keys. The URL and signing secret live in Vault KV (`webhooks/<app>`). */
@ApiTags('admin')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(400, 401, 403)
@UseGuards(CallerGuard)
@Controller('v1/apps/:appId/webhook')
export class WebhookController {
  constructor(
    private readonly authz: AuthzService,
    private readonly delivery: DeliveryService,
  ) {}

  @Put()
  @ApiOperation({
    summary: "Set the app's delivery webhook",
    description:
      "Returns the signing secret once. Needs update on latchkey/apps/<appId>/webhook — a right of its own, not in the app-manager template: the webhook receives every rotated key of the app (keys carrying latchkey's own policies are delivered to Vault KV only).",
  })
  @ApiResponse({ status: 200, type: WebhookSecretResponse })
  async put(@Caller() caller: Principal, @Param('appId') appId: string, @Body() body: PutWebhookDto, @Res({ passthrough: true }) reply: FastifyReply): Promise<WebhookSecretResponse> {
    await this.check(caller, appId, 'update', AuthzPath.appWebhook(appId));
    const cfg = await this.delivery.putWebhook(appId, body.url, body.secret);
    void reply.header('Cache-Control', 'no-store');
    return { appId, url: cfg.url, secret: cfg.secret, updatedAt: cfg.updatedAt, signatureHeader: 'Latchkey-Signature' };
  }

  @Get()
  @ApiOperation({ summary: "The app's webhook (without its secret) and the last delivery's outcome", description: 'Needs read on latchkey/apps/<appId>/keys.' })
  @ApiResponse({ status: 200, type: WebhookResponse })
  @ApiErrors(404)
  async get(@Caller() caller: Principal, @Param('appId') appId: string): Promise<WebhookResponse> {
    await this.check(caller, appId, 'read');
    const cfg = await this.delivery.getWebhook(appId);
    if (!cfg) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'no webhook configured for this app');
    return { appId, url: cfg.url, updatedAt: cfg.updatedAt, lastDelivery: await this.delivery.status(appId) };
  }

  @Delete()
  @HttpCode(204)
  @ApiResponse({ status: 204, description: 'removed (also when there was none)' })
  @ApiOperation({ summary: "Remove the app's webhook", description: 'Needs delete on latchkey/apps/<appId>/webhook.' })
  async remove(@Caller() caller: Principal, @Param('appId') appId: string): Promise<void> {
    await this.check(caller, appId, 'delete', AuthzPath.appWebhook(appId));
    await this.delivery.deleteWebhook(appId);
  }

  private async check(caller: Principal, appId: string, cap: 'read' | 'update' | 'delete', path?: string): Promise<void> {
    if (!APP_ID_RE.test(appId)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'appId must be 1-63 of a-z 0-9 _ -, starting with a letter or digit');
    await this.authz.require(caller, path ?? AuthzPath.appKeys(appId), cap);
  }
}

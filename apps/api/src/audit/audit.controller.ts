import { Controller, Get, Inject, Param, Query, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { AuditEventsQuery, parseTimeBound, UsageReader } from '@latchkey/audit';
import { AuthzPath, AuthzService, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { KEY_ID_RE, KeyIndex } from '@latchkey/keys';
import { Caller, CallerGuard } from '../auth/caller.guard';
import { ApiErrors } from '../http/api-errors';
import { AuditEventPageResponse, AuditEventsQueryDto, KeyUsageResponse, UsageQueryDto } from './dto';

@ApiTags('audit')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(401, 403)
@UseGuards(CallerGuard)
@Controller('v1')
export class AuditController {
  constructor(
    private readonly index: KeyIndex,
    private readonly authz: AuthzService,
    private readonly usage: UsageReader,
    private readonly events: AuditEventsQuery,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('keys/:keyId/usage')
  @ApiOperation({
    summary: 'Usage of a key',
    description:
      'Verifications answered by latchkey (counted in memory, flushed every USAGE_FLUSH_EVERY) merged with direct uses of the key against Vault found in the audit log (ingested every AUDIT_INGEST_EVERY). `hourly` covers the last `hours` hours of verifications. Needs read on latchkey/apps/<appId>/keys.',
  })
  @ApiParam({ name: 'keyId', description: 'the key id (Vault token accessor)' })
  @ApiResponse({ status: 200, type: KeyUsageResponse })
  @ApiErrors(400, 404)
  async keyUsage(@Caller() caller: Principal, @Param('keyId') keyId: string, @Query() q: UsageQueryDto): Promise<KeyUsageResponse> {
    const record = KEY_ID_RE.test(keyId) ? await this.index.get(keyId) : null;
    if (!record) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
    await this.authz.require(caller, AuthzPath.appKeys(record.appId), 'read');
    const u = await this.usage.get(keyId, 30, q.hours ?? 24);
    const freshnessSeconds = Math.ceil(Math.max(this.config.audit.ingestEveryMs, this.config.audit.usageFlushEveryMs) / 1000);
    return { ...u, appId: record.appId, freshnessSeconds };
  }

  @Get('audit/events')
  @ApiOperation({
    summary: 'Audit events',
    description:
      "latchkey's admin actions (source=latchkey) and Vault audit-log events (source=vault), oldest first, filtered by app, key, type, path prefix and time (RFC 3339, or relative: since=1h); cursor pagination. A page may hold fewer than `limit` items and still carry a cursor (each request scans a bounded part of the stream). Needs read on latchkey/audit, or with appId=<app> read on latchkey/apps/<app>/audit (an app team's own events).",
  })
  @ApiResponse({ status: 200, type: AuditEventPageResponse })
  async list(@Caller() caller: Principal, @Query() q: AuditEventsQueryDto): Promise<AuditEventPageResponse> {
    // Every app's trail needs read on latchkey/audit; an app's team reads its own app's events only.
    if (!(await this.authz.can(caller, AuthzPath.audit, 'read'))) {
      if (!q.appId) {
        throw new LatchkeyError(ErrorCode.FORBIDDEN, `Not allowed: read on ${AuthzPath.audit} (an app's events need appId and read on ${AuthzPath.appAudit('<appId>')})`);
      }
      await this.authz.require(caller, AuthzPath.appAudit(q.appId), 'read');
    }
    // One clock for both bounds: `since=1h&until=1h` is one instant.
    const now = Date.now();
    const sinceMs = q.since ? (parseTimeBound(q.since, now) ?? undefined) : undefined;
    const untilMs = q.until ? (parseTimeBound(q.until, now) ?? undefined) : undefined;
    if (sinceMs !== undefined && untilMs !== undefined && sinceMs > untilMs) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'since must not be after until');
    const page = await this.events.list({ appId: q.appId, keyId: q.keyId, type: q.type, path: q.path, source: q.source, sinceMs, untilMs }, q.limit ?? 100, q.cursor);
    return { items: page.items as unknown as AuditEventPageResponse['items'], nextCursor: page.nextCursor };
  }
}

import { Controller, Get, Inject, Param, Query, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { UsageReader } from '@latchkey/audit';
import { AuthzPath, AuthzService, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { APP_ID_RE } from '@latchkey/keys';
import { Caller, CallerGuard } from '../auth/caller.guard';
import { ApiErrors } from '../http/api-errors';
import { AppUsageResponse, UsageQueryDto } from './dto';

/** Usage of a whole app (its own controller: other /v1/apps/:appId routes live elsewhere). */
@ApiTags('audit')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(401, 403)
@UseGuards(CallerGuard)
@Controller('v1/apps')
export class AppUsageController {
  constructor(
    private readonly authz: AuthzService,
    private readonly usage: UsageReader,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get(':appId/usage')
  @ApiOperation({
    summary: 'Usage of an app',
    description:
      "Verifications of the app's keys answered by latchkey (counted in memory, flushed every USAGE_FLUSH_EVERY), refused ones broken down by code. Refusals that name no key of the app (MALFORMED, NOT_FOUND) cannot be attributed to it and are not counted here. `hourly` covers the last `hours` hours. Needs read on latchkey/apps/<appId>/keys.",
  })
  @ApiParam({ name: 'appId', example: 'orders' })
  @ApiResponse({ status: 200, type: AppUsageResponse })
  @ApiErrors(400)
  async appUsage(@Caller() caller: Principal, @Param('appId') appId: string, @Query() q: UsageQueryDto): Promise<AppUsageResponse> {
    if (!APP_ID_RE.test(appId)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'appId must be 1-63 of a-z 0-9 _ -, starting with a letter or digit');
    await this.authz.require(caller, AuthzPath.appKeys(appId), 'read');
    const u = await this.usage.app(appId, 30, q.hours ?? 24);
    return { ...u, freshnessSeconds: Math.ceil(this.config.audit.usageFlushEveryMs / 1000) };
  }
}

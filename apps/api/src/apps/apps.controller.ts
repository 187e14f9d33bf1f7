import { Controller, Get, Module, Query, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { AppsModule, AppsService } from '@latchkey/apps';
import { Principal } from '@latchkey/authz';
import { ApiAuthModule } from '../auth/auth.module';
import { Caller, CallerGuard } from '../auth/caller.guard';
import { ApiErrors } from '../http/api-errors';
import { AppPageResponse, AppsQueryDto } from './dto';

@ApiTags('apps')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(400, 401)
@UseGuards(CallerGuard)
@Controller('v1/apps')
export class AppsController {
  constructor(private readonly apps: AppsService) {}

  @Get()
  @ApiOperation({
    summary: 'Apps the caller may see',
    description:
      "Apps known to latchkey (any key, certificate or webhook ever written for them) on which the caller's Vault policies grant read or list on latchkey/apps/<appId>/keys, or read on latchkey/apps/<appId>/certs, with those capabilities. Other apps are never named, in items or in the (opaque) cursor. By app id, cursor pagination; a page may hold fewer than `limit` apps and still carry a cursor. Any authenticated caller.",
  })
  @ApiResponse({ status: 200, type: AppPageResponse })
  list(@Caller() caller: Principal, @Query() q: AppsQueryDto): Promise<AppPageResponse> {
    return this.apps.list(caller, q.limit ?? 100, q.cursor);
  }
}

/** GET /v1/apps. */
@Module({ imports: [AppsModule, ApiAuthModule], controllers: [AppsController] })
export class AppsHttpModule {}

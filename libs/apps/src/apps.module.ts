import { Module } from '@nestjs/common';
import { AuthzModule } from '@latchkey/authz';
import { AppRegistry } from './app-registry';
import { AppsService } from './apps.service';
import { CursorSeal } from './cursor-seal';

/** The app registry and the caller's view of it (GET /v1/apps). Needs ConfigModule and RedisModule (global). */
@Module({
  imports: [AuthzModule],
  providers: [AppRegistry, AppsService, CursorSeal],
  exports: [AppRegistry, AppsService],
})
export class AppsModule {}

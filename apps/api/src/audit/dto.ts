import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateBy } from 'class-validator';
import { parseTimeBound, STREAM_ID_RE } from '@latchkey/audit';
import { APP_ID_RE } from '@latchkey/keys';
import { PageLimit } from '../http/validation';

export class DailyUsage {
  @ApiProperty({ example: '2026-11-27', description: 'UTC day' }) date!: string;
  @ApiProperty({ example: 42 }) count!: number;
}

export class VaultUsage {
  @ApiProperty({ example: 12, description: 'requests made with the key directly against Vault (from the audit log)' }) count!: number;
  @ApiProperty({ example: 1, description: 'of which Vault answered with an error' }) errors!: number;
}

const REFUSAL_CODES = 'FORBIDDEN_IP, INSUFFICIENT_PERMISSIONS, CERT_REQUIRED, CERT_MISMATCH, RATE_LIMITED, USAGE_EXCEEDED';

export class VerifyUsage {
  @ApiProperty({ example: 30, description: 'verifications of the key answered by latchkey' }) count!: number;
  @ApiProperty({ example: 2, description: 'of which failed (e.g. CIDR or permission check)' }) failures!: number;
  @ApiProperty({
    example: { FORBIDDEN_IP: 2 },
    description: `refused verifications by code (${REFUSAL_CODES}); codes never seen are absent. Counted by code since this field exists: failures may be larger for older keys`,
    type: 'object',
    additionalProperties: { type: 'integer' },
  })
  refusedByCode!: Record<string, number>;
}

export class HourlyUsage {
  @ApiProperty({ example: '2026-12-01T11:00:00.000Z', description: 'start of the UTC hour' }) hour!: string;
  @ApiProperty({ example: 40 }) valid!: number;
  @ApiProperty({ example: 2 }) refused!: number;
  @ApiProperty({ example: { FORBIDDEN_IP: 2 }, description: 'refused verifications of the hour by code; codes not seen are absent', type: 'object', additionalProperties: { type: 'integer' } })
  refusedByCode!: Record<string, number>;
}

const HOURLY_DESCRIPTION =
  "verifications answered by latchkey per UTC hour: exactly `hours` entries, oldest first, ending with the current hour, zero-filled. Counts land in the hour of the api instance's flush (every USAGE_FLUSH_EVERY), so a verification late in an hour may count in the next; kept 8 days";

const toHours = ({ value }: { value: unknown }) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value);

export class UsageQueryDto {
  @ApiPropertyOptional({ example: 24, minimum: 1, maximum: 168, default: 24, description: 'length of the hourly series' })
  @IsOptional()
  @Transform(toHours)
  @IsInt()
  @Min(1)
  @Max(168)
  hours?: number;
}

export class KeyUsageResponse {
  @ApiProperty({ example: 'UyPy8oZXtPSO8jCrSQPwiOAU' }) keyId!: string;
  @ApiProperty({ example: 'orders' }) appId!: string;
  @ApiProperty({ example: 42, description: 'uses from both sources' }) count!: number;
  @ApiProperty({ example: 3, description: 'Vault errors plus failed verifications' }) errors!: number;
  @ApiProperty({ example: '2026-11-27T17:57:24.176Z', nullable: true, type: String }) lastUsedAt!: string | null;
  @ApiProperty({ example: '10.1.2.3', nullable: true, type: String, description: 'remote address of the last use (Vault request.remote_address, or the verified client ip)' })
  lastIp!: string | null;
  @ApiProperty({ enum: ['vault', 'verify'], nullable: true, type: String }) lastSource!: 'vault' | 'verify' | null;
  @ApiProperty({ type: VaultUsage }) vault!: VaultUsage;
  @ApiProperty({ type: VerifyUsage }) verify!: VerifyUsage;
  @ApiProperty({ type: [DailyUsage], description: 'uses per UTC day over the last 30 days (days without use omitted), most recent first' })
  daily!: DailyUsage[];
  @ApiProperty({ type: [HourlyUsage], description: `${HOURLY_DESCRIPTION} (direct uses against Vault are not in it)` }) hourly!: HourlyUsage[];
  @ApiProperty({
    example: 5,
    description: 'usage lags by up to the audit ingestion interval (Vault uses) and the usage flush interval (verifications)',
  })
  freshnessSeconds!: number;
}

/** An absolute RFC 3339 time or a relative one (`1h` = an hour ago). */
function IsTimeBound(): PropertyDecorator {
  return ValidateBy({
    name: 'isTimeBound',
    validator: {
      validate: (v: unknown) => typeof v === 'string' && v.length <= 64 && parseTimeBound(v) !== null,
      defaultMessage: (a) => `${a?.property ?? 'value'} must be an RFC 3339 time (2026-11-27T00:00:00Z) or a duration ago (15m, 1h, 7d, 1h30m)`,
    },
  });
}

export class AppVerifyUsage {
  @ApiProperty({ example: 1200, description: "verifications of the app's keys answered by latchkey" }) count!: number;
  @ApiProperty({ example: 1180 }) valid!: number;
  @ApiProperty({ example: 20 }) refused!: number;
  @ApiProperty({
    example: { FORBIDDEN_IP: 12, RATE_LIMITED: 8 },
    description: `refused verifications by code (${REFUSAL_CODES}); codes never seen are absent`,
    type: 'object',
    additionalProperties: { type: 'integer' },
  })
  refusedByCode!: Record<string, number>;
}

export class AppUsageResponse {
  @ApiProperty({ example: 'orders' }) appId!: string;
  @ApiProperty({ type: AppVerifyUsage }) verify!: AppVerifyUsage;
  @ApiProperty({ type: [DailyUsage], description: 'verifications per UTC day over the last 30 days (days without any omitted), most recent first' })
  daily!: DailyUsage[];
  @ApiProperty({ type: [HourlyUsage], description: HOURLY_DESCRIPTION }) hourly!: HourlyUsage[];
  @ApiProperty({ example: 5, description: 'counts lag by up to the usage flush interval' }) freshnessSeconds!: number;
}


export class AuditEventsQueryDto {
  @ApiPropertyOptional({ example: 'orders', description: 'events of this app (admin actions on its keys, and Vault requests made with its keys)' })
  @IsOptional()
  @IsString()
  @Matches(APP_ID_RE, { message: 'appId must be 1-63 of a-z 0-9 _ -' })
  appId?: string;

  @ApiPropertyOptional({ example: 'UyPy8oZXtPSO8jCrSQPwiOAU', description: 'events of this key (accessor)' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9]{1,64}$/, { message: 'keyId must be a key id (token accessor)' })
  keyId?: string;

  @ApiPropertyOptional({ example: 'admin.*', description: 'exact type (admin.key.mint, admin.key.revoke, vault.request, vault.response…) or a prefix ending in *' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9._-]{1,64}\*?$/, { message: 'type must be an event type, optionally ending in *' })
  type?: string;

  @ApiPropertyOptional({ example: 'auth/token/', description: 'prefix of the Vault request path' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  @Matches(/^[\x21-\x7e]+$/, { message: 'path must be printable ASCII without spaces' })
  path?: string;

  @ApiPropertyOptional({ enum: ['vault', 'latchkey'], description: 'vault: ingested from the audit log; latchkey: admin actions' })
  @IsOptional()
  @IsIn(['vault', 'latchkey'])
  source?: 'vault' | 'latchkey';

  @ApiPropertyOptional({ example: '1h', description: 'events at or after this time: RFC 3339 (2026-11-27T00:00:00Z) or a duration ago (15m, 1h, 7d, 1h30m; units s m h d w)' })
  @IsOptional()
  @IsString()
  @IsTimeBound()
  since?: string;

  @ApiPropertyOptional({ example: '15m', description: 'events at or before this time: RFC 3339 or a duration ago (15m = until 15 minutes ago)' })
  @IsOptional()
  @IsString()
  @IsTimeBound()
  until?: string;

  @ApiPropertyOptional({ example: '1764265044176-0', description: 'nextCursor of the previous page (a stream id)' })
  @IsOptional()
  @IsString()
  @Matches(STREAM_ID_RE, { message: 'cursor must be the nextCursor of a previous page' })
  cursor?: string;

  @PageLimit(500, { example: 100 })
  limit?: number;
}

export class AuditEvent {
  @ApiProperty({ example: '1764265044176-0', description: 'stream id (use as cursor)' }) id!: string;
  @ApiProperty({ enum: ['vault', 'latchkey'] }) source!: string;
  @ApiProperty({ example: 'vault.response', description: 'admin.<action> for latchkey admin actions; vault.request / vault.response for Vault audit lines' })
  type!: string;
  @ApiProperty({ example: '2026-11-27T17:57:24.176035965Z' }) time!: string;
  @ApiPropertyOptional({ enum: ['success', 'failure'] }) outcome?: string;
  @ApiPropertyOptional({ description: 'accessor of the caller’s token' }) actor?: string;
  @ApiPropertyOptional({ description: 'display name of the caller’s token' }) actorName?: string;
  @ApiPropertyOptional() appId?: string;
  @ApiPropertyOptional({ description: 'the key acted on (admin) or used (vault)' }) keyId?: string;
  @ApiPropertyOptional({ description: 'Vault or latchkey request id' }) requestId?: string;
  @ApiPropertyOptional({ example: 'read' }) operation?: string;
  @ApiPropertyOptional({ example: 'auth/token/lookup-self' }) path?: string;
  @ApiPropertyOptional({ example: 'auth/token/' }) mount?: string;
  @ApiPropertyOptional({ example: '10.1.2.3' }) remoteAddress?: string;
  @ApiPropertyOptional({ example: 'default,orders-read', description: 'policies of the caller’s token, comma-separated' }) policies?: string;
  @ApiPropertyOptional({ description: 'Vault’s error message (redacted)' }) error?: string;
  @ApiPropertyOptional({ description: 'admin events: detail of the action' }) detail?: string;
}

export class AuditEventPageResponse {
  @ApiProperty({ type: [AuditEvent], description: 'oldest first' }) items!: AuditEvent[];
  @ApiProperty({ nullable: true, type: String, description: 'pass as cursor for more; null at the end' }) nextCursor!: string | null;
}

import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateBy,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { IsDuration } from '@latchkey/config';
import { APP_ID_RE, KEY_NAME_RE, KEY_STATES, KeyState, POLICY_NAME_RE, PROFILE_NAME_RE } from '@latchkey/keys';
import { LIMIT_NAME_RE } from '@latchkey/limits';
import { Optional, PageLimit } from '../http/validation';

const DURATION_DOC = 'Vault-style duration ("90s", "15m", "24h") or integer seconds';

/** A flat map of short strings (owner metadata). */
function IsStringMap(): PropertyDecorator {
  return ValidateBy({
    name: 'isStringMap',
    validator: {
      validate: (v: unknown) =>
        typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length <= 16 && Object.values(v).every((x) => typeof x === 'string' && x.length <= 256),
      defaultMessage: () => 'meta must be an object of at most 16 string values (each at most 256 characters)',
    },
  });
}

export class LimitDto {
  @ApiProperty({ example: 'requests', description: 'name of the limit (a-z 0-9 _ -, up to 32); a key’s limit overrides its profile’s of the same name' })
  @IsString()
  @Matches(LIMIT_NAME_RE, { message: 'limit name must match ^[a-z][a-z0-9_-]{0,31}$' })
  name!: string;

  @ApiProperty({ example: 100, description: 'units per window (a positive integer)' })
  @IsInt()
  @Min(1)
  limit!: number;

  @ApiProperty({ example: '60s', description: `window length; the window starts at the first charge; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @IsDuration()
  window!: string | number;

  @ApiPropertyOptional({ enum: ['strict', 'local'], default: 'strict', description: 'strict: exact across api instances (one atomic Redis operation per verify); local: decided in memory from leased shares' })
  @Optional()
  @IsIn(['strict', 'local'])
  mode?: 'strict' | 'local';

  @ApiPropertyOptional({ default: true, description: 'charged (cost 1) on every verify; otherwise only when a verify names it' })
  @Optional()
  @IsBoolean()
  autoApply?: boolean;
}

export class CreditsRefillDto {
  @ApiProperty({ example: 10000, description: 'the balance is set to this at the start of every period' })
  @IsInt()
  @Min(1)
  amount!: number;

  @ApiProperty({ example: '720h', description: `period, counted from the key's creation; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @IsDuration()
  every!: string | number;
}

export class CreditsDto {
  @ApiProperty({ example: 10000, description: 'credits a key starts with; each VALID verify spends its cost (default 1)' })
  @IsInt()
  @Min(0)
  remaining!: number;

  @ApiPropertyOptional({ type: CreditsRefillDto, nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @ValidateNested()
  @Type(() => CreditsRefillDto)
  refill?: CreditsRefillDto | null;
}

/** A list of limits in a request body (profiles and mints). */
function LimitsField(description: string): PropertyDecorator {
  return applyDecorators(ApiPropertyOptional({ type: [LimitDto], description }), Optional(), IsArray(), ArrayMaxSize(8), ValidateNested({ each: true }), Type(() => LimitDto));
}

/** Credits in a request body (profiles and mints); null means none. */
function CreditsField(description: string): PropertyDecorator {
  return applyDecorators(ApiPropertyOptional({ type: CreditsDto, nullable: true, description }), IsOptional(), ValidateIf((_, v) => v !== null), ValidateNested(), Type(() => CreditsDto));
}

export class LimitResponse {
  @ApiProperty({ example: 'requests' }) name!: string;
  @ApiProperty({ example: 100 }) limit!: number;
  @ApiProperty({ example: '1m' }) window!: string;
  @ApiProperty({ enum: ['strict', 'local'] }) mode!: 'strict' | 'local';
  @ApiProperty({ example: true }) autoApply!: boolean;
}

export class CreditsResponse {
  @ApiProperty({ example: 10000 }) remaining!: number;
  @ApiProperty({ type: CreditsRefillDto, nullable: true }) refill!: { amount: number; every: string } | null;
}

export class RotationDto {
  @ApiProperty({ example: '720h', description: `rotate keys this often; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @IsDuration()
  every!: string | number;

  @ApiPropertyOptional({ example: '24h', description: `old key stays valid this long after rotation; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  grace?: string | number;
}

export class SelfServiceDto {
  @ApiPropertyOptional({ example: false, default: false, description: 'the holder may renew the key with the key alone (POST /v1/keys/self/renew)' })
  @Optional()
  @IsBoolean()
  renew?: boolean;

  @ApiPropertyOptional({
    example: false,
    default: false,
    description: "the holder may rotate the key with the key alone (POST /v1/keys/self/rotate); the successor is also delivered to the owner's Vault KV path and webhook",
  })
  @Optional()
  @IsBoolean()
  rotate?: boolean;
}

/** Both always present in responses. */
export class SelfServiceResponse {
  @ApiProperty({ example: false }) renew!: boolean;
  @ApiProperty({ example: false }) rotate!: boolean;
}

export class ProfileDto {
  @ApiProperty({ example: ['orders-read'], description: 'policies keys of this profile may carry (never "root")' })
  @IsArray()
  @ArrayMaxSize(64)
  @IsString({ each: true })
  @Matches(POLICY_NAME_RE, { each: true, message: 'each policy must be a valid Vault policy name (lowercase a-z 0-9 _ . -)' })
  allowedPolicies!: string[];

  @ApiPropertyOptional({ example: '720h', description: `default key TTL; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  ttl?: string | number;

  @ApiProperty({ example: '2160h', description: `explicit max TTL of every key; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @IsDuration()
  maxTtl!: string | number;

  @ApiPropertyOptional({ example: null, nullable: true, description: `periodic tokens: renewals reset the TTL to this; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsDuration()
  period?: string | number | null;

  @ApiPropertyOptional({ example: 0, description: 'uses per key (0 = unlimited)' })
  @Optional()
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  numUses?: number;

  @ApiPropertyOptional({ example: [], description: 'CIDRs every key of this profile is bound to (Vault token_bound_cidrs)' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  cidrs?: string[];

  @ApiPropertyOptional({ type: RotationDto, nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @ValidateNested()
  @Type(() => RotationDto)
  rotation?: RotationDto | null;

  @ApiPropertyOptional({
    type: SelfServiceDto,
    nullable: true,
    description: 'what a key holder may do with the key alone; absent or null: nothing (self-service renew and rotate answer 403 SELF_SERVICE_DISABLED)',
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @ValidateNested()
  @Type(() => SelfServiceDto)
  selfService?: SelfServiceDto | null;

  @LimitsField('rate limits every key of this profile gets (a key may override them by name)')
  limits?: LimitDto[];

  @CreditsField('credits every key of this profile starts with, unless it brings its own; absent or null: none')
  credits?: CreditsDto | null;

  @ApiPropertyOptional({ default: true, description: 'may a key of this profile carry credits of its own (at mint)?' })
  @Optional()
  @IsBoolean()
  keyCredits?: boolean;

  @ApiPropertyOptional({ example: '5m', default: '5m', description: `lifetime of the access tokens its keys obtain at POST /oauth2/token (never past the key's own expiry; at most TOKEN_MAX_TTL); ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  tokenTtl?: string | number;
}

export class ProfileResponse {
  @ApiProperty({ example: 'default' }) name!: string;
  @ApiProperty({ example: 'latchkey-default', description: 'the Vault token role' }) role!: string;
  @ApiPropertyOptional({
    example: ['Policy "orders-read" does not exist: fine if it is only a permission for verify; for Vault rights, write it first (bao policy write orders-read orders-read.hcl)'],
    description: 'on create or replace only: what is allowed but probably not meant — policies Vault does not have (keys get no Vault rights from them), keys that expire before their rotation unless renewed',
  })
  warnings?: string[];
  @ApiProperty({ example: ['orders-read'] }) allowedPolicies!: string[];
  @ApiProperty({ example: '720h' }) ttl!: string;
  @ApiProperty({ example: '2160h' }) maxTtl!: string;
  @ApiProperty({ example: null, nullable: true, type: String }) period!: string | null;
  @ApiProperty({ example: 0 }) numUses!: number;
  @ApiProperty({ example: [] }) cidrs!: string[];
  @ApiProperty({ type: RotationDto, nullable: true }) rotation!: RotationDto | null;
  @ApiProperty({ type: SelfServiceResponse, description: 'what a key holder may do with the key alone' }) selfService!: SelfServiceResponse;
  @ApiProperty({ type: [LimitResponse] }) limits!: LimitResponse[];
  @ApiProperty({ type: CreditsResponse, nullable: true }) credits!: CreditsResponse | null;
  @ApiProperty({ example: true }) keyCredits!: boolean;
  @ApiProperty({ example: '5m', description: 'lifetime of access tokens from the token endpoint' }) tokenTtl!: string;
}

export class ProfileListResponse {
  @ApiProperty({ type: [ProfileResponse] }) items!: ProfileResponse[];
}

export class MintKeyDto {
  @ApiProperty({ example: 'orders' })
  @IsString()
  @Matches(APP_ID_RE, { message: 'appId must be 1-63 of a-z 0-9 _ -' })
  appId!: string;

  @ApiProperty({ example: 'default' })
  @IsString()
  @Matches(PROFILE_NAME_RE, { message: 'profile must be a profile name' })
  profile!: string;

  @ApiProperty({ example: 'orders-prod' })
  @IsString()
  @Matches(KEY_NAME_RE, { message: 'name must be 1-128 of A-Z a-z 0-9 . _ -' })
  name!: string;

  @ApiPropertyOptional({ example: { owner: 'team-orders' }, description: 'owner metadata, stored on the Vault token' })
  @Optional()
  @IsObject()
  @IsStringMap()
  meta?: Record<string, string>;

  @ApiPropertyOptional({ example: '24h', description: `capped by the profile's maxTtl; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  ttl?: string | number;

  @ApiPropertyOptional({ example: ['orders-read'], description: "subset of the profile's allowed policies (default: all of them)" })
  @Optional()
  @IsArray()
  @ArrayMaxSize(64)
  @IsString({ each: true })
  policies?: string[];

  @ApiPropertyOptional({ example: ['10.0.0.0/8'], description: 'bind the key to these CIDRs (enforced by Vault and by verify)' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  cidrs?: string[];

  @ApiPropertyOptional({ example: null, nullable: true, description: `answer with a Vault response-wrapping token instead of the key; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsDuration()
  wrapTtl?: string | number | null;

  @ApiPropertyOptional({
    example: '1f:2a:3b:4c',
    description: "bind the key to a client certificate of the same app (serial, colon or plain hex): verify then accepts the key only together with that certificate",
  })
  @Optional()
  @IsString()
  @Matches(/^[0-9a-fA-F:-]{2,128}$/, { message: 'certSerial must be a certificate serial (hex)' })
  certSerial?: string;

  @LimitsField("the key's own rate limits; they override the profile's of the same name")
  limits?: LimitDto[];

  @CreditsField("the key's own credits (instead of the profile's); refused when the profile sets keyCredits: false")
  credits?: CreditsDto | null;
}

export class RenewKeyDto {
  @ApiPropertyOptional({ example: '24h', description: `extend by this much (capped by the profile); ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  increment?: string | number;
}

export class RotateKeyDto {
  @ApiPropertyOptional({ example: '1h', description: `the old key keeps working this long (never past its own expiry); ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  grace?: string | number;

  @ApiPropertyOptional({
    default: true,
    description:
      "false: the caller takes the successor from this response and it is NOT delivered to the owner's Vault KV path or webhook (on the admin record and the app's delivery history). Only on POST /v1/keys/{keyId}/rotate; a self-service rotation always delivers (400 if false).",
  })
  @Optional()
  @IsBoolean()
  deliver?: boolean;
}

export class UnwrapDto {
  @ApiProperty({ description: 'the wrapping token from a mint with wrapTtl (single use)' })
  @IsString()
  @MaxLength(512)
  wrapToken!: string;
}

export class ListKeysQuery {
  @ApiPropertyOptional({ example: 'orders' })
  @Optional()
  @IsString()
  @Matches(APP_ID_RE)
  appId?: string;

  @ApiPropertyOptional({ example: 'default' })
  @Optional()
  @IsString()
  @Matches(PROFILE_NAME_RE)
  profile?: string;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @Optional()
  @IsString()
  @MaxLength(200)
  cursor?: string;

  @PageLimit(500, { example: 50 })
  limit?: number;

  @ApiPropertyOptional({
    enum: KEY_STATES,
    description:
      'only keys in this state. Without it: active and rotating keys, oldest first (as always). active / rotating: the same list filtered — a page may hold fewer than limit keys, follow nextCursor. revoked / expired: keys that ended in the last 30 days (since this filter exists), by when they ended',
  })
  @Optional()
  @IsIn(KEY_STATES, { message: `state must be one of ${KEY_STATES.join(', ')}` })
  state?: KeyState;
}

export class RevokeKeyQuery {
  @ApiPropertyOptional({ example: 'leaked in a CI log', maxLength: 200, description: 'why (shown with the revoked key, kept 30 days): printable, one line, never the key itself' })
  @Optional()
  @IsString()
  @MaxLength(200)
  reason?: string;
}

export class KeyActorResponse {
  @ApiProperty({ example: 'hmSA3BTmcgDD2yHAJalEv4Sd', description: "the caller's token accessor (never the token), or latchkey-worker / latchkey for latchkey's own revocations" }) actor!: string;
  @ApiPropertyOptional({ example: 'token-ops-alice', description: "the caller's Vault display name" }) name?: string;
}

export class KeyResponse {
  @ApiPropertyOptional({ description: 'the key: shown once, at mint or rotate; absent when wrapped or replayed', example: 'lk_1…_…' }) key?: string;
  @ApiProperty({ description: 'the Vault token accessor (safe to log)', example: 'UyPy8oZXtPSO8jCrSQPwiOAU' }) keyId!: string;
  @ApiPropertyOptional({ example: ['Policy "orders-read" does not exist'], description: "Vault's warnings for the mint, e.g. policies Vault does not have (the key gets no Vault rights from them), and latchkey's (a ttl that ends before the profile's rotation)" })
  warnings?: string[];
  @ApiProperty({ example: 'orders' }) appId!: string;
  @ApiProperty({ example: 'orders-prod' }) name!: string;
  @ApiProperty({ example: 'default' }) profile!: string;
  @ApiProperty({ example: ['orders-read'] }) policies!: string[];
  @ApiProperty({ example: ['10.0.0.0/8'] }) cidrs!: string[];
  @ApiProperty({ example: { owner: 'team-orders' } }) meta!: Record<string, string>;
  @ApiProperty({ example: '2026-11-27T10:00:00.000Z' }) createdAt!: string;
  @ApiProperty({ example: '2026-12-27T10:00:00.000Z', nullable: true, type: String }) expiresAt!: string | null;
  @ApiProperty({ enum: ['active', 'rotating', 'revoked', 'expired'] }) state!: string;
  @ApiPropertyOptional() previousKeyId?: string;
  @ApiPropertyOptional() successorKeyId?: string;
  @ApiPropertyOptional({ description: 'when a rotated-out key will be revoked' }) revokeAt?: string;
  @ApiPropertyOptional({ description: 'revoked keys: when' }) revokedAt?: string;
  @ApiPropertyOptional({ type: KeyActorResponse, description: 'revoked keys: who (absent when revoked outside latchkey)' }) revokedBy?: KeyActorResponse;
  @ApiPropertyOptional({ example: 'leaked in a CI log', description: "revoked keys: why (the caller's reason, or latchkey's for its own revocations)" }) revokeReason?: string;
  @ApiPropertyOptional({ description: 'rotate only: when the rotated-out key (previousKeyId) will be revoked — the end of its grace period' }) previousKeyRevokeAt?: string;
  @ApiPropertyOptional({ description: 'serial of the client certificate the key is bound to' }) certSerial?: string;
  @ApiPropertyOptional({ description: 'response-wrapping token (mint with wrapTtl)' }) wrapToken?: string;
  @ApiPropertyOptional({ example: '300s' }) wrapTtl?: string;
  @ApiPropertyOptional({ description: 'true when this answers a replayed Idempotency-Key (no key included)' }) replayed?: boolean;
}

export class LiveKeyState {
  @ApiProperty() ttlSeconds!: number;
  @ApiProperty({ nullable: true, type: String }) expiresAt!: string | null;
  @ApiProperty() boundCidrs!: string[];
  @ApiProperty() policies!: string[];
  @ApiProperty() numUsesLeft!: number;
  @ApiProperty() renewable!: boolean;
}

export class LimitStateResponse extends LimitResponse {
  @ApiProperty({ example: 42, description: 'units left in the current window' }) remaining!: number;
  @ApiProperty({ example: '2026-12-01T10:00:00.000Z', nullable: true, type: String, description: 'when the current window ends; null when none is open' }) resetAt!: string | null;
}

export class CreditsStateResponse extends CreditsResponse {
  @ApiProperty({ example: 9958, description: 'credits left now (with a refill due applied)' }) balance!: number;
}

export class KeyDetailResponse extends KeyResponse {
  @ApiProperty({ type: LiveKeyState, nullable: true, description: "Vault's live view (lookup-accessor; policies without Vault's implicit default); null when Vault no longer has the key" })
  live!: LiveKeyState | null;
  @ApiPropertyOptional({
    description:
      "GET only, active keys of a rotating profile: when the key becomes due for its scheduled rotation (rotation.every after its mint; the worker's scan rotates it within ROTATION_SCAN_EVERY). Absent when the key expires first",
  })
  nextRotationAt?: string;
  @ApiPropertyOptional({ type: [LimitStateResponse], description: "GET only: the key's effective rate limits (its own over its profile's) and their current windows" })
  limits?: LimitStateResponse[];
  @ApiPropertyOptional({ type: CreditsStateResponse, nullable: true, description: "GET only: the key's effective credits (its own, else its profile's) and the balance" })
  credits?: CreditsStateResponse | null;
}

export class AdjustCreditsDto {
  @ApiPropertyOptional({ example: 5000, description: 'set the balance to this (exactly one of set and add)' })
  @Optional()
  @IsInt()
  @Min(0)
  @Max(2 ** 47)
  set?: number;

  @ApiPropertyOptional({ example: 1000, description: 'add this to the balance (negative takes away; the balance never goes below 0)' })
  @Optional()
  @IsInt()
  @Min(-(2 ** 47))
  @Max(2 ** 47)
  add?: number;
}

export class CreditsBalanceResponse {
  @ApiProperty({ example: 'UyPy8oZXtPSO8jCrSQPwiOAU' }) keyId!: string;
  @ApiProperty({ example: 6000 }) balance!: number;
}

export class KeyListResponse {
  @ApiProperty({ type: [KeyResponse] }) items!: KeyResponse[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

export class RevokeAllResponse {
  @ApiProperty({ example: 3 }) revoked!: number;
}

export class UnwrapResponse {
  @ApiProperty() key!: string;
  @ApiPropertyOptional() keyId?: string;
}

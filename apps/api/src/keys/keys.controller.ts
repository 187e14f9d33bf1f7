import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Patch, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { Principal } from '@latchkey/authz';
import { CertIndex, certState, normalizeSerial, recordLineage } from '@latchkey/certs';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { BindableCert, KeyLimitsService, KeysService } from '@latchkey/keys';
import { Caller, CallerGuard, KeyHolderGuard, RequestId } from '../auth/caller.guard';
import { ApiErrors } from '../http/api-errors';
import { AdjustCreditsDto, CreditsBalanceResponse, CreditsResponse, KeyDetailResponse, KeyListResponse, KeyResponse, ListKeysQuery, MintKeyDto, RenewKeyDto, RotateKeyDto, RevokeAllResponse, RevokeKeyQuery, UnwrapDto, UnwrapResponse } from './dto';
import { presentCredits, presentKey, presentLimit, presentLive, presentMint } from './presenters';

/** Self-service: the key holder acts on their own key, authenticated by it. Declared first so /self/* is never read as a key id. */
@ApiTags('keys: self-service')
@ApiBearerAuth('managementKey')
@ApiErrors(401, 403, 404)
@UseGuards(KeyHolderGuard)
@Controller('v1/keys/self')
export class SelfKeysController {
  constructor(private readonly keys: KeysService) {}

  @Post('renew')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Renew the key presented in Authorization: Bearer',
    description: "Only if the key's profile opts in (selfService.renew); otherwise 403 SELF_SERVICE_DISABLED.",
  })
  @ApiBody({ type: RenewKeyDto, required: false })
  @ApiResponse({ status: 200, type: KeyDetailResponse })
  @ApiErrors(409)
  async renew(@Caller() holder: Principal, @Body() body: RenewKeyDto, @RequestId() requestId: string): Promise<KeyDetailResponse> {
    const { record, live } = await this.keys.selfRenew(holder, body.increment, { requestId });
    return { ...presentKey(record), live: presentLive(live) };
  }

  @Post('rotate')
  @ApiOperation({
    summary: 'Rotate the key presented in Authorization: Bearer',
    description:
      "Only if the key's profile opts in (selfService.rotate); otherwise 403 SELF_SERVICE_DISABLED. Returns the successor once and, like a scheduled rotation, also delivers it to the owner's Vault KV path and the app's webhook (trigger \"self\"). The presented key keeps working for the grace period.",
  })
  @ApiBody({ type: RotateKeyDto, required: false })
  @ApiResponse({ status: 201, type: KeyResponse })
  @ApiErrors(409)
  async rotate(@Caller() holder: Principal, @Body() body: RotateKeyDto, @RequestId() requestId: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<KeyResponse> {
    // Opting out would let whoever holds the key (a thief too) rotate it into a successor only they know.
    if (body.deliver === false) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'a self-service rotation is always delivered to the owner: deliver cannot be false');
    const out = await this.keys.selfRotate(holder, body.grace, { requestId });
    void reply.header('Cache-Control', 'no-store');
    return { ...presentMint(out), previousKeyId: out.previousKeyId, previousKeyRevokeAt: out.revokeAt };
  }
}

@ApiTags('keys')
@Controller('v1/keys')
export class UnwrapController {
  constructor(private readonly keys: KeysService) {}

  @Post('unwrap')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Exchange a response-wrapping token for the key',
    description: 'For a third party that received the wrapping token of a mint with wrapTtl. Single use: a second call fails. No other credential needed.',
  })
  @ApiResponse({ status: 200, type: UnwrapResponse })
  @ApiErrors(401)
  async unwrap(@Body() body: UnwrapDto): Promise<UnwrapResponse> {
    const { key, record } = await this.keys.unwrap(body.wrapToken);
    return { key, ...(record ? { keyId: record.keyId } : {}) };
  }
}

@ApiTags('keys')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(401, 403)
@UseGuards(CallerGuard)
@Controller('v1')
export class KeysController {
  constructor(
    private readonly keys: KeysService,
    private readonly certs: CertIndex,
    private readonly limits: KeyLimitsService,
  ) {}

  /**
   * A key may only be bound to an active certificate of its own app; it is bound to that certificate's
   * lineage from its generation on, so renewals of it keep the key valid and its predecessors do not.
   */
  private async bindableCert(appId: string, input: string | undefined): Promise<BindableCert | undefined> {
    if (input === undefined) return undefined;
    const serial = normalizeSerial(input);
    const record = serial ? await this.certs.get(serial) : null;
    if (!serial || !record || record.appId !== appId || certState(record) !== 'active') {
      throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'certSerial must name an active certificate of the same app');
    }
    return { serial, ...recordLineage(record), notAfter: record.notAfter, autoRenew: record.autoRenew };
  }

  @Post('keys')
  @ApiOperation({
    summary: 'Mint a key',
    description:
      'Mints a Vault service token through the profile\'s token role (or a derived role for a CIDR set) and returns it once as a latchkey key. Needs create on latchkey/apps/<appId>/keys.',
  })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'replaying the same request never mints twice (the replay answers with the key id, without the key)' })
  @ApiResponse({ status: 201, type: KeyResponse, description: 'minted' })
  @ApiResponse({ status: 200, type: KeyResponse, description: 'idempotent replay (no key)' })
  @ApiErrors(404, 409, 422)
  async mint(
    @Caller() caller: Principal,
    @Body() body: MintKeyDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @RequestId() requestId: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<KeyResponse> {
    const { certSerial: _, ...rest } = body;
    const cert = await this.bindableCert(body.appId, body.certSerial);
    const out = await this.keys.mint(caller, { ...rest, ...(cert ? { cert } : {}) }, { idempotencyKey, requestId });
    void reply.status(out.replayed ? 200 : 201);
    if (out.replayed) void reply.header('Idempotent-Replayed', 'true');
    void reply.header('Cache-Control', 'no-store');
    return presentMint(out);
  }

  @Get('keys')
  @ApiOperation({
    summary: 'List keys',
    description: 'By app (needs list on latchkey/apps/<appId>/keys) and/or profile; without appId needs list on latchkey/apps/*/keys. Cursor pagination. Active and rotating keys unless state says otherwise.',
  })
  @ApiResponse({ status: 200, type: KeyListResponse })
  async list(@Caller() caller: Principal, @Query() q: ListKeysQuery): Promise<KeyListResponse> {
    const page = await this.keys.list(caller, { appId: q.appId, profile: q.profile, state: q.state }, q.limit ?? 50, q.cursor);
    return { items: page.items.map((r) => presentKey(r)), nextCursor: page.nextCursor };
  }

  @Get('keys/:keyId')
  @ApiOperation({
    summary: 'Get a key',
    description: "The index record merged with Vault's live lookup-accessor, the next scheduled rotation (nextRotationAt) and, for a revoked key, when, by whom and why. Needs read on the key's app.",
  })
  @ApiResponse({ status: 200, type: KeyDetailResponse })
  @ApiErrors(404)
  async get(@Caller() caller: Principal, @Param('keyId') keyId: string): Promise<KeyDetailResponse> {
    const { record, live, nextRotationAt } = await this.keys.get(caller, keyId);
    const view = await this.limits.view(record);
    return {
      ...presentKey(record),
      live: presentLive(live),
      ...(nextRotationAt ? { nextRotationAt } : {}),
      limits: view.limits.map((l) => ({ ...presentLimit(l), remaining: l.remaining, resetAt: l.resetAt })),
      credits: view.credits ? { ...(presentCredits(view.credits) as CreditsResponse), balance: view.credits.balance } : null,
    };
  }

  @Patch('keys/:keyId/credits')
  @ApiOperation({ summary: "Set or add to a key's credits", description: "Exactly one of set and add. Needs update on the key's app; audited. 409 when the key has no credits." })
  @ApiResponse({ status: 200, type: CreditsBalanceResponse })
  @ApiErrors(404, 409)
  async adjustCredits(@Caller() caller: Principal, @Param('keyId') keyId: string, @Body() body: AdjustCreditsDto, @RequestId() requestId: string): Promise<CreditsBalanceResponse> {
    if ((body.set === undefined) === (body.add === undefined)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'give exactly one of set and add');
    const { balance } = await this.limits.adjust(caller, keyId, body, requestId);
    return { keyId, balance };
  }

  @Post('keys/:keyId/renew')
  @HttpCode(200)
  @ApiOperation({ summary: 'Renew a key', description: 'renew-accessor; the increment is capped by the profile. Needs update on the key\'s app.' })
  @ApiBody({ type: RenewKeyDto, required: false })
  @ApiResponse({ status: 200, type: KeyDetailResponse })
  @ApiErrors(404, 409)
  async renew(@Caller() caller: Principal, @Param('keyId') keyId: string, @Body() body: RenewKeyDto, @RequestId() requestId: string): Promise<KeyDetailResponse> {
    const { record, live } = await this.keys.renew(caller, keyId, body.increment, { requestId });
    return { ...presentKey(record), live: presentLive(live) };
  }

  @Post('keys/:keyId/rotate')
  @ApiOperation({
    summary: 'Rotate a key',
    description:
      'Mints a successor with the same attributes (returned once); the old key (previousKeyId) is revoked after the grace period, never later than its own expiry, at previousKeyRevokeAt. Like every rotation, the successor is also delivered to the owner\'s Vault KV path and the app\'s webhook (trigger "manual"), unless the body says "deliver": false. Needs update on the key\'s app and, as for a mint, create on latchkey/profiles/<profile>/keys and the right to grant the key\'s policies (403 POLICY_NOT_HELD).',
  })
  @ApiBody({ type: RotateKeyDto, required: false })
  @ApiResponse({ status: 201, type: KeyResponse })
  @ApiErrors(404, 409)
  async rotate(@Caller() caller: Principal, @Param('keyId') keyId: string, @Body() body: RotateKeyDto, @RequestId() requestId: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<KeyResponse> {
    const out = await this.keys.rotate(caller, keyId, body.grace, { requestId }, { deliver: body.deliver });
    void reply.header('Cache-Control', 'no-store');
    return { ...presentMint(out), previousKeyId: out.previousKeyId, previousKeyRevokeAt: out.revokeAt };
  }

  @Delete('keys/:keyId')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Revoke a key',
    description:
      'revoke-accessor; idempotent. Every verify cache drops the key before this returns. The record stays readable with GET (state "revoked", revokedAt, revokedBy, revokeReason) as history for 30 days. Needs delete on the key\'s app.',
  })
  @ApiResponse({ status: 204, description: 'revoked' })
  @ApiErrors(404)
  async revoke(@Caller() caller: Principal, @Param('keyId') keyId: string, @Query() q: RevokeKeyQuery, @RequestId() requestId: string): Promise<void> {
    await this.keys.revoke(caller, keyId, { requestId, reason: q.reason });
  }

  @Post('apps/:appId/keys/revoke-all')
  @HttpCode(200)
  @ApiOperation({ summary: "Revoke every key of an app (kill switch)", description: 'Needs delete on latchkey/apps/<appId>/keys.' })
  @ApiResponse({ status: 200, type: RevokeAllResponse })
  async revokeAll(@Caller() caller: Principal, @Param('appId') appId: string, @Query() q: RevokeKeyQuery, @RequestId() requestId: string): Promise<RevokeAllResponse> {
    return { revoked: await this.keys.revokeAll(caller, appId, { requestId, reason: q.reason }) };
  }
}

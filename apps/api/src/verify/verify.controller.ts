import { All, Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { verifyDuration, VerifyService } from '@latchkey/verify';
import { ApiErrors } from '../http/api-errors';
import { mapError, sendError } from '../http/error-filter';
import { Logger } from '@nestjs/common';
import { VerifyKeyDto, VerifyKeyResponse } from './verify.dto';

const verifyTimer = verifyDuration.labels('verify');
const authTimer = verifyDuration.labels('auth');
const BEARER_RE = /^Bearer\s+(\S+)$/i;

/**
 * The hot path. Authenticated by network position (gateways, sidecars):
 * the answer reveals nothing beyond the outcome code.
 */
@ApiTags('verify')
@Controller('v1')
export class VerifyController {
  private readonly logger = new Logger('Verify');

  constructor(private readonly verifier: VerifyService) {}

  @Post('keys/verify')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Verify a key',
    description:
      'Always 200 with a verdict: VALID, MALFORMED, NOT_FOUND (unknown, expired or revoked), FORBIDDEN_IP, INSUFFICIENT_PERMISSIONS. 503 only when no verdict can be given (Vault unreachable and the key not cached).',
  })
  @ApiResponse({ status: 200, type: VerifyKeyResponse })
  @ApiErrors()
  async verify(@Body() body: VerifyKeyDto, @Req() req: FastifyRequest): Promise<VerifyKeyResponse> {
    const end = verifyTimer.startTimer();
    try {
      return await this.verifier.verify({ key: body.key, ip: body.ip ?? req.ip, permissions: body.permissions });
    } finally {
      end();
    }
  }

  @All(['auth', 'auth/*'])
  @ApiOperation({
    summary: 'Forward auth (nginx auth_request, Traefik forwardAuth, Envoy ext_authz HTTP)',
    description:
      'Any method, any sub-path. Reads Authorization: Bearer or X-API-Key. 204 with X-Latchkey-Key-Id, X-Latchkey-App-Id, X-Latchkey-Policies when valid; 401 missing/malformed/unknown; 403 CIDR or permission failure; 503 when Vault cannot be asked. Required permissions: query `permissions=a,b` or header X-Latchkey-Permissions.',
  })
  @ApiHeader({ name: 'X-API-Key', required: false })
  @ApiHeader({ name: 'X-Latchkey-Permissions', required: false, description: 'comma-separated policies the key must carry' })
  @ApiQuery({ name: 'permissions', required: false, description: 'comma-separated policies the key must carry' })
  @ApiResponse({ status: 204, description: 'valid' })
  @ApiResponse({ status: 401, description: 'missing, malformed or unknown key (X-Latchkey-Code header)' })
  @ApiResponse({ status: 403, description: 'CIDR or permission failure (X-Latchkey-Code header)' })
  @ApiErrors()
  async forwardAuth(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const end = authTimer.startTimer();
    try {
      const key = extractKey(req);
      if (!key) {
        void reply.code(401).header('WWW-Authenticate', 'Bearer realm="latchkey"').header('X-Latchkey-Code', 'MISSING').send();
        return;
      }
      const permissions = extractPermissions(req);
      let result;
      try {
        result = await this.verifier.verify({ key, ip: req.ip, permissions });
      } catch (err) {
        // No verdict (Vault down and key not cached): fail closed, tell the proxy to retry.
        sendError(reply, mapError(err, String(req.id), this.logger));
        return;
      }
      if (result.valid) {
        void reply
          .code(204)
          .header('X-Latchkey-Key-Id', result.keyId)
          .header('X-Latchkey-App-Id', result.appId)
          .header('X-Latchkey-Policies', result.policies.join(','))
          .send();
        return;
      }
      const status = result.code === 'FORBIDDEN_IP' || result.code === 'INSUFFICIENT_PERMISSIONS' ? 403 : 401;
      if (status === 401) void reply.header('WWW-Authenticate', 'Bearer realm="latchkey", error="invalid_token"');
      void reply.code(status).header('X-Latchkey-Code', result.code).send();
    } finally {
      end();
    }
  }
}

function extractKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = BEARER_RE.exec(auth);
    if (m) return m[1];
  }
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.length > 0) return apiKey.trim();
  return null;
}

function extractPermissions(req: FastifyRequest): string[] | undefined {
  const q = (req.query as Record<string, unknown> | undefined)?.permissions;
  const h = req.headers['x-latchkey-permissions'];
  const raw = typeof q === 'string' ? q : typeof h === 'string' ? h : undefined;
  if (!raw) return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .slice(0, 32);
}

import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiProduces, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { Principal } from '@latchkey/authz';
import { CaStore, CertsService, CertVerifier } from '@latchkey/certs';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { Caller, CallerGuard, RequestId } from '../auth/caller.guard';
import { ApiErrors } from '../http/api-errors';
import { CertDetailResponse, CertListResponse, IssueCertDto, IssueCertResponse, ListCertsQuery, RenewCertDto, RenewCertResponse, VerifyCertDto, VerifyCertResponse } from './dto';
import { presentCert, presentIssued } from './presenters';

const PEM_TYPE = 'application/x-pem-file';

/** Public: CA chain, CRL and verify (gateways and sidecars, authenticated by network position or mTLS). */
@ApiTags('certs')
@Controller('v1/certs')
export class CertsPublicController {
  constructor(
    private readonly ca: CaStore,
    private readonly verifier: CertVerifier,
  ) {}

  @Get('ca')
  @ApiOperation({ summary: 'CA chain (PEM)', description: 'The issuing chain of latchkey certificates: the trust anchor for servers that accept them.' })
  @ApiProduces(PEM_TYPE)
  @ApiResponse({ status: 200, description: 'PEM bundle' })
  @ApiErrors()
  async caChain(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const pem = await this.ca.chainPem();
    void reply.header('content-type', PEM_TYPE).header('cache-control', 'public, max-age=300');
    return pem;
  }

  @Get('crl')
  @ApiOperation({ summary: 'Certificate revocation list (PEM)', description: 'Vault rebuilds it lazily; for instant revocation use POST /v1/certs/verify.' })
  @ApiProduces(PEM_TYPE)
  @ApiResponse({ status: 200, description: 'PEM CRL' })
  @ApiErrors()
  async crl(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const pem = await this.ca.crlPem();
    void reply.header('content-type', PEM_TYPE).header('cache-control', 'no-cache');
    return pem;
  }

  @Post('verify')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Verify a client certificate (PEM or Envoy X-Forwarded-Client-Cert)',
    description:
      'Always 200 with a verdict: VALID, MALFORMED, UNKNOWN_CA (not issued by the latchkey CA), NOT_YET_VALID, EXPIRED, REVOKED (immediately after a revoke, on every instance), NOT_FOUND (not a latchkey certificate, or unknown to Vault). 400 when the body is not exactly one of certificate/xfcc or the XFCC value is malformed; 503 only when no verdict can be given.',
  })
  @ApiResponse({ status: 200, type: VerifyCertResponse })
  @ApiErrors()
  async verify(@Body() body: VerifyCertDto): Promise<VerifyCertResponse> {
    const hasCert = body.certificate !== undefined;
    const hasXfcc = body.xfcc !== undefined;
    if (hasCert === hasXfcc) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'give exactly one of certificate or xfcc');
    return hasCert ? this.verifier.verifyPem(body.certificate as string) : this.verifier.verifyXfcc(body.xfcc as string);
  }
}

@ApiTags('certs')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(401, 403)
@UseGuards(CallerGuard)
@Controller('v1/certs')
export class CertsController {
  constructor(private readonly certs: CertsService) {}

  @Post()
  @ApiOperation({
    summary: 'Issue a client certificate, or sign a CSR',
    description:
      'Without csr, Vault generates the key pair (pki/issue) and the private key is returned once, never stored. With csr, Vault signs it (pki/sign) and no private key touches latchkey. The app is bound into the certificate as URI SAN urn:latchkey:app:<appId>. Names (CN, URI SANs) belong to the first app that obtains them. Needs create on latchkey/apps/<appId>/certs.',
  })
  @ApiResponse({ status: 201, type: IssueCertResponse })
  @ApiErrors(404)
  async issue(@Caller() caller: Principal, @Body() body: IssueCertDto, @RequestId() requestId: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<IssueCertResponse> {
    const out = await this.certs.issue(caller, { ...body, csr: body.csr ?? null }, { requestId });
    void reply.status(201).header('Cache-Control', 'no-store');
    return presentIssued(out);
  }

  @Get()
  @ApiOperation({ summary: 'List certificates', description: 'Non-revoked certificates of an app (needs list on latchkey/apps/<appId>/certs), oldest first, cursor pagination.' })
  @ApiResponse({ status: 200, type: CertListResponse })
  async list(@Caller() caller: Principal, @Query() q: ListCertsQuery): Promise<CertListResponse> {
    const page = await this.certs.list(caller, q.appId, q.limit ?? 50, q.cursor);
    return { items: page.items.map(presentCert), nextCursor: page.nextCursor };
  }

  @Get(':serial')
  @ApiOperation({ summary: 'Get a certificate', description: "Index record, the certificate, and Vault's live revocation status. Serial in colon hex or plain hex. Needs read on the certificate's app." })
  @ApiResponse({ status: 200, type: CertDetailResponse })
  @ApiErrors(404)
  async get(@Caller() caller: Principal, @Param('serial') serial: string): Promise<CertDetailResponse> {
    const { record, certificate, live } = await this.certs.get(caller, serial);
    return { ...presentCert(record), certificate, live };
  }

  @Post(':serial/renew')
  @ApiOperation({
    summary: 'Renew a certificate',
    description:
      "Re-issues with the same subject and SANs (a new key for issued certificates; the same or a new CSR for signed ones). The old certificate stays valid until it expires, or is revoked after `grace`. Needs update on the certificate's app.",
  })
  @ApiBody({ type: RenewCertDto, required: false })
  @ApiResponse({ status: 201, type: RenewCertResponse })
  @ApiErrors(404, 409)
  async renew(@Caller() caller: Principal, @Param('serial') serial: string, @Body() body: RenewCertDto, @RequestId() requestId: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<RenewCertResponse> {
    const out = await this.certs.renew(caller, serial, body, { requestId });
    void reply.status(201).header('Cache-Control', 'no-store');
    return { ...presentIssued(out), previousSerial: out.previousSerial, ...(out.revokeAt ? { revokeAt: out.revokeAt } : {}) };
  }

  @Delete(':serial')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a certificate', description: "pki/revoke; idempotent. Every instance's verify answers REVOKED before this returns. The certificate stays readable with GET (state \"revoked\"). Needs delete on the certificate's app." })
  @ApiResponse({ status: 204, description: 'revoked' })
  @ApiErrors(404)
  async revoke(@Caller() caller: Principal, @Param('serial') serial: string, @RequestId() requestId: string): Promise<void> {
    await this.certs.revoke(caller, serial, { requestId });
  }
}

import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsOptional, IsString, Matches, MaxLength, ValidateIf } from 'class-validator';
import { IsDuration } from '@latchkey/config';
import { CERT_APP_ID_RE, CERT_VERIFY_CODES } from '@latchkey/certs';
import { Optional, PageLimit } from '../http/validation';

const DURATION_DOC = 'Vault-style duration ("90s", "15m", "24h") or integer seconds';

export class IssueCertDto {
  @ApiProperty({ example: 'orders' })
  @IsString()
  @Matches(CERT_APP_ID_RE, { message: 'appId must be 1-63 of a-z 0-9 _ -' })
  appId!: string;

  @ApiPropertyOptional({ example: 'orders-api', description: 'subject CN (required unless a csr carries it; with a csr it must equal the CSR\'s CN)' })
  @Optional()
  @IsString()
  @MaxLength(64)
  commonName?: string;

  @ApiPropertyOptional({ example: ['spiffe://example.org/ns/prod/sa/orders'], description: 'SPIFFE IDs or URNs (urn:latchkey:* is reserved: latchkey adds urn:latchkey:app:<appId> itself)' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(16)
  @IsString({ each: true })
  @MaxLength(600, { each: true })
  uriSans?: string[];

  @ApiPropertyOptional({ example: ['10.0.0.12'] })
  @Optional()
  @IsArray()
  @ArrayMaxSize(16)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  ipSans?: string[];

  @ApiPropertyOptional({ example: '72h', description: `capped by CERT_MAX_TTL (default 720h); default CERT_DEFAULT_TTL (72h); ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  ttl?: string | number;

  @ApiPropertyOptional({
    // `string | null` reflects as Object: without the explicit type the document said "object".
    type: String,
    nullable: true,
    description: 'PEM PKCS#10 request: Vault signs it and no private key ever passes through latchkey. Keys: RSA >= 2048 bits, EC P-256/P-384/P-521 or Ed25519. Its CN is the subject; SANs come from uriSans/ipSans, not from the CSR.',
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsString()
  // Real requests are 1-3 KiB of PEM (RSA-4096 with many SANs included); the parser's cost on a hostile one
  // grows with its size (docs/security.md), so the cap is kept at a few times a real request.
  @MaxLength(8192)
  csr?: string | null;

  @ApiPropertyOptional({ example: false, description: 'let the rotation job renew it at two thirds of its lifetime' })
  @Optional()
  @IsBoolean()
  autoRenew?: boolean;
}

export class RenewCertDto {
  @ApiPropertyOptional({ example: '1h', description: `revoke the old certificate this long after renewal ("0s": at once); absent: it stays valid until it expires; ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  grace?: string | number;

  @ApiPropertyOptional({ example: '72h', description: `lifetime of the new certificate (default: the old one's); ${DURATION_DOC}`, oneOf: [{ type: 'string' }, { type: 'integer' }] })
  @Optional()
  @IsDuration()
  ttl?: string | number;

  @ApiPropertyOptional({ description: 'a new CSR (same CN) for a certificate signed from a CSR; default: the original CSR again (same key)' })
  @Optional()
  @IsString()
  @MaxLength(8192)
  csr?: string;
}

export class ListCertsQuery {
  @ApiPropertyOptional({ example: 'orders', description: 'without it, needs list on latchkey/apps/*/certs' })
  @Optional()
  @IsString()
  @Matches(CERT_APP_ID_RE)
  appId?: string;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @Optional()
  @IsString()
  @MaxLength(200)
  cursor?: string;

  @PageLimit(500, { example: 50 })
  limit?: number;
}

export class VerifyCertDto {
  @ApiPropertyOptional({ description: 'PEM client certificate (give this or xfcc)' })
  @Optional()
  @IsString()
  @MaxLength(32768)
  certificate?: string;

  @ApiPropertyOptional({ description: 'an Envoy X-Forwarded-Client-Cert header value with a Cert field (give this or certificate)' })
  @Optional()
  @IsString()
  @MaxLength(65536)
  xfcc?: string;
}

export class CertResponse {
  @ApiProperty({ example: '46:7e:73:32:33:e5:c7:60:5c:91:d0:b7:82:94:81:25:97:0f:92:01', description: "Vault's colon-hex serial (URLs also accept plain hex)" }) serial!: string;
  @ApiProperty({ example: 'orders' }) appId!: string;
  @ApiProperty({ example: 'orders-api' }) commonName!: string;
  @ApiProperty({ example: 'CN=orders-api' }) subject!: string;
  @ApiProperty({ example: ['spiffe://example.org/ns/prod/sa/orders'] }) uriSans!: string[];
  @ApiProperty({ example: [] }) ipSans!: string[];
  @ApiProperty() notBefore!: string;
  @ApiProperty({ description: 'notAfter' }) expiresAt!: string;
  @ApiProperty({ description: 'two thirds into the lifetime' }) renewAt!: string;
  @ApiProperty() autoRenew!: boolean;
  @ApiProperty({ enum: ['issue', 'csr'], description: 'issue: Vault generated the key (returned once); csr: the client holds it' }) source!: string;
  @ApiProperty({ example: 'ec-P-256' }) keyType!: string;
  @ApiProperty({ enum: ['active', 'revoked', 'expired'] }) state!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ example: '46:7e:73:32:33:e5:c7:60:5c:91:d0:b7:82:94:81:25:97:0f:92:01', description: 'serial of the first certificate of its renewal lineage (its own for a first issue); keys bound to any certificate of the lineage accept its renewals' }) lineage!: string;
  @ApiProperty({ example: 0, description: 'renewals since the lineage began' }) generation!: number;
  @ApiPropertyOptional() revokedAt?: string;
  @ApiPropertyOptional() previousSerial?: string;
  @ApiPropertyOptional() successorSerial?: string;
  @ApiPropertyOptional({ description: 'when this renewed-out certificate will be revoked' }) revokeAt?: string;
}

export class IssueCertResponse extends CertResponse {
  @ApiProperty({ description: 'PEM' }) certificate!: string;
  @ApiPropertyOptional({ description: 'PEM PKCS#8; only when latchkey had Vault generate the key. Shown once, never stored.' }) privateKey?: string;
  @ApiPropertyOptional({ example: 'ec' }) privateKeyType?: string;
  @ApiProperty({ type: [String], description: 'PEM of the issuing chain' }) caChain!: string[];
}

export class RenewCertResponse extends IssueCertResponse {
  @ApiProperty() declare previousSerial: string;
}

export class LiveCertState {
  @ApiProperty() revoked!: boolean;
  @ApiProperty({ nullable: true, type: String }) revokedAt!: string | null;
}

export class CertDetailResponse extends CertResponse {
  @ApiProperty({ nullable: true, type: String, description: 'PEM (null once Vault has tidied the certificate away)' }) certificate!: string | null;
  @ApiProperty({ type: LiveCertState, nullable: true, description: "Vault's live view (cert/:serial)" }) live!: LiveCertState | null;
}

export class CertListResponse {
  @ApiProperty({ type: [CertResponse] }) items!: CertResponse[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

export class VerifyCertResponse {
  @ApiProperty() valid!: boolean;
  @ApiProperty({ enum: CERT_VERIFY_CODES }) code!: string;
  @ApiProperty({ nullable: true, type: String }) serial!: string | null;
  @ApiProperty({ nullable: true, type: String }) appId!: string | null;
  @ApiProperty({ nullable: true, type: String, example: 'CN=orders-api' }) subject!: string | null;
  @ApiProperty({ nullable: true, type: String }) commonName!: string | null;
  @ApiProperty({ type: [String] }) uriSans!: string[];
  @ApiProperty({ nullable: true, type: String }) expiresAt!: string | null;
}

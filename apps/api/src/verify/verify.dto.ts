import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsIP, IsOptional, IsString, MaxLength } from 'class-validator';

export class VerifyKeyDto {
  @ApiProperty({ example: 'lk_1LBZSDwbzA96vlZw9hiNvKXfWGVyRu206KrB_1yRgtb', description: 'the key to check' })
  @IsString()
  @MaxLength(4096)
  key!: string;

  @ApiPropertyOptional({ example: '10.1.2.3', description: "the end client's address, checked against the key's bound CIDRs (default: this request's client address)" })
  @IsOptional()
  @IsIP()
  ip?: string;

  @ApiPropertyOptional({ example: ['orders-read'], description: 'policies the key must carry' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(128, { each: true })
  permissions?: string[];
}

export class VerifyKeyResponse {
  @ApiProperty() valid!: boolean;
  @ApiProperty({ enum: ['VALID', 'MALFORMED', 'NOT_FOUND', 'FORBIDDEN_IP', 'INSUFFICIENT_PERMISSIONS'] }) code!: string;
  @ApiProperty({ nullable: true, type: String, description: 'accessor' }) keyId!: string | null;
  @ApiProperty({ nullable: true, type: String }) appId!: string | null;
  @ApiProperty({ nullable: true, type: String }) name!: string | null;
  @ApiProperty({ type: [String] }) policies!: string[];
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) meta!: Record<string, string>;
  @ApiProperty({ nullable: true, type: String }) expiresAt!: string | null;
}

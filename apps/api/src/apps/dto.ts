import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches } from 'class-validator';
import { PageLimit } from '../http/validation';

export class AppsQueryDto {
  @ApiPropertyOptional({ description: 'nextCursor of the previous page (opaque)' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,512}$/, { message: 'cursor must be the nextCursor of a previous page' })
  cursor?: string;

  @PageLimit(500, { example: 100, default: 100 })
  limit?: number;
}

export class VisibleAppResponse {
  @ApiProperty({ example: 'orders' }) appId!: string;
  @ApiProperty({
    type: [String],
    example: ['read', 'list'],
    description: "the caller's Vault capabilities on latchkey/apps/<appId>/keys (create, read, update, delete, list, sudo; `root` means all); [] for none",
  })
  keys!: string[];
  @ApiProperty({ type: [String], example: [], description: "the caller's Vault capabilities on latchkey/apps/<appId>/certs; [] for none" })
  certs!: string[];
}

export class AppPageResponse {
  @ApiProperty({ type: [VisibleAppResponse], description: 'by app id (byte order)' }) items!: VisibleAppResponse[];
  @ApiProperty({ nullable: true, type: String, description: 'pass as cursor for more; null at the end. A page may hold fewer than `limit` apps and still carry a cursor' })
  nextCursor!: string | null;
}

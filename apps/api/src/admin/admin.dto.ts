import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';

export class QueuesQuery {
  @ApiPropertyOptional({ description: 'failed jobs listed per queue (0-100, default 20)' })
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value))
  @IsInt()
  @Min(0)
  @Max(100)
  failedLimit?: number;
}

export class PutWebhookDto {
  @ApiProperty({ example: 'https://orders.example.com/hooks/latchkey', description: 'receives POSTs signed with Latchkey-Signature (https unless WEBHOOK_ALLOW_HTTP)' })
  @IsString()
  @MaxLength(2048)
  url!: string;

  @ApiPropertyOptional({ description: 'signing secret (16-256 characters); generated when absent. Returned once, in this response.' })
  @IsOptional()
  @IsString()
  @MinLength(16)
  @MaxLength(256)
  secret?: string;
}

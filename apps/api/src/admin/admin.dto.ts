import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { Optional } from '../http/validation';

export class QueuesQuery {
  @ApiPropertyOptional({ description: 'failed jobs listed per queue (0-100, default 20)' })
  @Optional()
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
  @Optional()
  @IsString()
  @MinLength(16)
  @MaxLength(256)
  secret?: string;
}

export class FailedJobResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'redacted, at most 500 characters' }) failedReason!: string;
  @ApiProperty() attemptsMade!: number;
  @ApiProperty({ nullable: true, type: String }) failedAt!: string | null;
}

export class SchedulerResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ nullable: true, type: Number }) everyMs!: number | null;
  @ApiProperty({ nullable: true, type: String }) next!: string | null;
}

export class QueueResponse {
  @ApiProperty() name!: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, example: { waiting: 0, active: 1, failed: 0 } }) counts!: Record<string, number>;
  @ApiProperty({ type: [FailedJobResponse] }) failed!: FailedJobResponse[];
  @ApiProperty({ type: [SchedulerResponse] }) schedulers!: SchedulerResponse[];
}

export class QueuesResponse {
  @ApiProperty({ type: [QueueResponse] }) queues!: QueueResponse[];
}

export class WebhookSecretResponse {
  @ApiProperty() appId!: string;
  @ApiProperty() url!: string;
  @ApiProperty({ description: 'the signing secret, shown once' }) secret!: string;
  @ApiProperty() updatedAt!: string;
  @ApiProperty({ example: 'Latchkey-Signature' }) signatureHeader!: string;
}

export class WebhookDeliveryResponse {
  @ApiProperty() keyId!: string;
  @ApiProperty({ enum: ['pending', 'delivered', 'failed', 'superseded'] }) state!: string;
  @ApiProperty() attempts!: number;
  @ApiProperty() at!: string;
  @ApiPropertyOptional() httpStatus?: number;
  @ApiPropertyOptional() error?: string;
}

export class WebhookResponse {
  @ApiProperty() appId!: string;
  @ApiProperty() url!: string;
  @ApiProperty() updatedAt!: string;
  @ApiProperty({ type: WebhookDeliveryResponse, nullable: true }) lastDelivery!: WebhookDeliveryResponse | null;
}

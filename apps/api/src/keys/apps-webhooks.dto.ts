import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';
import { DELIVERY_HISTORY_MAX } from '@latchkey/delivery';
import { Optional } from '../http/validation';

export class DeliveriesQuery {
  @ApiPropertyOptional({ description: `entries, newest first (1-${DELIVERY_HISTORY_MAX}, default 50)` })
  @Optional()
  @Transform(({ value }) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value))
  @IsInt()
  @Min(1)
  @Max(DELIVERY_HISTORY_MAX)
  limit?: number;
}

export class WebhookTestResponse {
  @ApiProperty() appId!: string;
  @ApiProperty({ description: 'the configured URL the test went to' }) url!: string;
  @ApiProperty({ description: 'id of the test event (its body "id")' }) eventId!: string;
  @ApiProperty({ enum: ['delivered', 'failed'], description: 'delivered: the receiver answered 2xx' }) status!: string;
  @ApiProperty({ nullable: true, type: Number, description: "the receiver's HTTP status; null when it could not be reached" }) httpStatus!: number | null;
  @ApiProperty({ description: 'milliseconds from sending to the answer (or the failure)' }) latencyMs!: number;
  @ApiPropertyOptional() error?: string;
}

export class DeliveryRecordResponse {
  @ApiProperty() at!: string;
  @ApiProperty({ enum: ['key.rotated', 'webhook.test'] }) event!: string;
  @ApiProperty({ enum: ['kv', 'webhook'] }) channel!: string;
  @ApiProperty({ enum: ['delivered', 'failed', 'retrying', 'queued', 'superseded', 'skipped'] }) status!: string;
  @ApiPropertyOptional({ description: 'the delivered (successor) key id' }) keyId?: string;
  @ApiPropertyOptional() previousKeyId?: string;
  @ApiPropertyOptional({ enum: ['scheduled', 'self', 'manual'] }) trigger?: string;
  @ApiPropertyOptional() attempt?: number;
  @ApiPropertyOptional() httpStatus?: number;
  @ApiPropertyOptional() latencyMs?: number;
  @ApiPropertyOptional() error?: string;
  @ApiPropertyOptional() detail?: string;
}

export class DeliveriesResponse {
  @ApiProperty() appId!: string;
  @ApiProperty({ type: [DeliveryRecordResponse] }) items!: DeliveryRecordResponse[];
}

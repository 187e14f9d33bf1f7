import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DELIVERY_HISTORY_MAX } from '@latchkey/delivery';
import { PageLimit } from '../http/validation';

export class DeliveriesQuery {
  @PageLimit(DELIVERY_HISTORY_MAX, { description: `entries, newest first (1-${DELIVERY_HISTORY_MAX}, default 50)` })
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

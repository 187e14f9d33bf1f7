import { applyDecorators, ValidationError, ValidationPipe } from '@nestjs/common';
import { ApiPropertyOptional, ApiPropertyOptions } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, Max, Min, ValidateIf } from 'class-validator';
import { ErrorCode, LatchkeyError } from '@latchkey/common';

function collect(errors: ValidationError[], parent = ''): Array<{ field: string; problems: string[] }> {
  const out: Array<{ field: string; problems: string[] }> = [];
  for (const e of errors) {
    const field = parent ? `${parent}.${e.property}` : e.property;
    if (e.constraints) out.push({ field, problems: Object.values(e.constraints) });
    if (e.children?.length) out.push(...collect(e.children, field));
  }
  return out;
}

/** Global pipe: unknown fields rejected, types transformed, failures reported per field (never echoing values). */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    forbidUnknownValues: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => {
      const details = collect(errors);
      return new LatchkeyError(
        ErrorCode.VALIDATION_FAILED,
        details.map((d) => `${d.field}: ${d.problems.join(', ')}`).join('; ') || 'invalid input',
        { details },
      );
    },
  });
}

/**
 * An optional field that, when present, must be valid: unlike class-validator's
 * IsOptional, `null` is not "absent" (the services would receive it). Fields that
 * accept null say so with `@IsOptional() @ValidateIf((_, v) => v !== null)`.
 */
export function Optional(): PropertyDecorator {
  return ValidateIf((_: object, v: unknown) => v !== undefined);
}

/** A whole number in a query string ("50" becomes 50); anything else is left for IsInt to refuse (no other coercion). */
export const queryInt = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value);

/** A page size in a query string: optional, an integer from 1 to `max`; `doc` adds to its OpenAPI entry. */
export function PageLimit(max: number, doc: ApiPropertyOptions = {}): PropertyDecorator {
  return applyDecorators(ApiPropertyOptional({ minimum: 1, maximum: max, ...doc } as ApiPropertyOptions), Optional(), Transform(queryInt), IsInt(), Min(1), Max(max));
}

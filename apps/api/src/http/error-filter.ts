import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, HTTP_STATUS_BY_CODE, LatchkeyError, redactText } from '@latchkey/common';

export interface ErrorBody {
  error: { code: string; message: string; requestId: string; details?: unknown };
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.BAD_REQUEST,
  401: ErrorCode.UNAUTHENTICATED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  405: ErrorCode.METHOD_NOT_ALLOWED,
  409: ErrorCode.CONFLICT,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  429: ErrorCode.RATE_LIMITED,
  503: ErrorCode.VAULT_UNAVAILABLE,
};

/** Fastify's own errors (raised before a Nest handler runs, e.g. while parsing the body). */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: ErrorCode.MALFORMED_JSON,
  FST_ERR_CTP_EMPTY_JSON_BODY: ErrorCode.MALFORMED_JSON,
  FST_ERR_CTP_BODY_TOO_LARGE: ErrorCode.PAYLOAD_TOO_LARGE,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ErrorCode.BAD_REQUEST,
};

export interface MappedError {
  status: number;
  body: ErrorBody;
  retryAfter?: number;
}

/** One mapping from anything thrown to `{error:{code,message,requestId}}`. */
export function mapError(err: unknown, requestId: string, logger: Logger): MappedError {
  if (err instanceof LatchkeyError) {
    const status = err.httpStatus;
    if (status >= 500) logger.warn(`${err.code}: ${err.message}`);
    return {
      status,
      retryAfter: err.retryAfter ?? (status === 503 ? 2 : undefined),
      body: { error: { code: err.code, message: redactText(err.message), requestId, ...(err.details !== undefined ? { details: err.details } : {}) } },
    };
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse() as string | { message?: string | string[] };
    const message = typeof res === 'string' ? res : Array.isArray(res.message) ? res.message.join('; ') : (res.message ?? err.message);
    const code =
      status === 404 && /^Cannot /.test(message)
        ? ErrorCode.ROUTE_NOT_FOUND
        : status === 400 && /not valid JSON|Unexpected .*JSON|JSON at position/i.test(message)
          ? ErrorCode.MALFORMED_JSON // Nest re-wraps Fastify's JSON parse error as a BadRequestException
          : (CODE_BY_STATUS[status] ?? (status < 500 ? ErrorCode.BAD_REQUEST : ErrorCode.INTERNAL));
    if (status >= 500) logger.error(`HTTP ${status}: ${redactText(message)}`);
    return { status, body: { error: { code, message: redactText(message), requestId } } };
  }
  const fe = err as { statusCode?: number; code?: string; message?: string };
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = (fe.code && FASTIFY_CODES[fe.code]) || CODE_BY_STATUS[fe.statusCode] || ErrorCode.BAD_REQUEST;
    return { status: HTTP_STATUS_BY_CODE[code] ?? fe.statusCode, body: { error: { code, message: redactText(fe.message ?? 'Bad request'), requestId } } };
  }
  logger.error({ err }, 'unhandled error');
  return { status: 500, body: { error: { code: ErrorCode.INTERNAL, message: 'Internal error', requestId } } };
}

export function sendError(reply: FastifyReply, mapped: MappedError): void {
  if (mapped.retryAfter !== undefined) void reply.header('Retry-After', String(mapped.retryAfter));
  void reply.header('x-request-id', mapped.body.error.requestId);
  void reply.status(mapped.status).header('content-type', 'application/json; charset=utf-8').send(mapped.body);
}

@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  /** `methodNotAllowed`: for a request no route matched, the Allow value when its path exists with other methods. */
  constructor(private readonly methodNotAllowed?: (req: FastifyRequest, reply: FastifyReply) => boolean) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<FastifyRequest>();
    const reply = ctx.getResponse<FastifyReply>();
    // QUERY without a Content-Type or a body is refused by Fastify before the not-found handler's 405 check
    // runs; a method no route takes is a 405 there too. (Bad bodies of other methods stay 400/413.)
    // (Nest hands these over re-wrapped as an HttpException without Fastify's error code: QUERY is the only
    // method Fastify judges before any handler, so the method itself is the test.)
    if (req.is404 && req.method === 'QUERY' && this.methodNotAllowed?.(req, reply)) return;
    sendError(reply, mapError(err, String(req.id), this.logger));
  }
}

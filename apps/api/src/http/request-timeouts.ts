import * as http from 'node:http';
import type { Socket } from 'node:net';
import { ErrorCode } from '@latchkey/common';
import type { AppConfig } from '@latchkey/config';

/**
 * Node's http server options that bound how long a request may take to
 * arrive. Node enforces requestTimeout/headersTimeout only when it sweeps its
 * connection list, every connectionsCheckingInterval (30 s by default), so a
 * 2 s timeout could take 32 s to bite: sweep at a quarter of the timeout, at
 * most once a second. Only requests still arriving are swept; idle keep-alive
 * connections stay governed by keepAliveTimeout, and a slow handler (Vault
 * taking its time) is not a slow request.
 */
export function requestTimeoutOptions(config: AppConfig): Required<Pick<http.ServerOptions, 'requestTimeout' | 'headersTimeout' | 'connectionsCheckingInterval'>> {
  const timeout = config.http.requestTimeoutMs;
  return {
    requestTimeout: timeout,
    // Headers alone may not take longer than the whole request (Node refuses headersTimeout > requestTimeout).
    headersTimeout: timeout,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(timeout / 4))),
  };
}

const ANSWERS: Record<string, { status: number; code: string; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: ErrorCode.REQUEST_TIMEOUT, message: 'the request did not arrive in time' },
  HPE_HEADER_OVERFLOW: { status: 431, code: ErrorCode.BAD_REQUEST, message: 'request headers too large' },
};
const MALFORMED = { status: 400, code: ErrorCode.BAD_REQUEST, message: 'malformed HTTP request' };

/**
 * `clientError` handler (Fastify's clientErrorHandler and the mTLS listener):
 * errors Node raises before a request exists — timeouts, oversized headers,
 * unparsable HTTP — answered in latchkey's error shape, then the connection closed.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const a = (err.code && ANSWERS[err.code]) || MALFORMED;
  // Like Node's own handler: never write into a response already under way on this connection.
  const inFlight = (socket as Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify({ error: { code: a.code, message: a.message, requestId: '' } });
    socket.write(
      `HTTP/1.1 ${a.status} ${http.STATUS_CODES[a.status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCode, LatchkeyError } from '@latchkey/common';

/**
 * Deepest JSON nesting a request body may have. No latchkey body nests deeper
 * than about 4 (a profile's `rotation`, a key's `meta`); 32 leaves room for
 * growth and stays far below what class-transformer and class-validator can
 * walk recursively (a few thousand levels overflow the stack: a 500).
 */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * Does this JSON text nest arrays/objects deeper than `max`? One pass, no
 * allocation: it runs on the verify hot path before every parse. Brackets
 * inside string literals (including after escaped quotes) do not count. On
 * text that is not JSON the answer is meaningless but harmless: the parser
 * rejects it next.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0, n = text.length; i < n; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++; // the escaped character (", \, or the u of \uXXXX) never closes the string
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

/**
 * Replace Fastify's application/json parser (once, for the Nest controllers,
 * the hot-path routes and the mTLS listener, which all share this instance)
 * with one that bounds nesting before anything parses or walks the body.
 * Parsing itself stays Fastify's own (secure-json-parse, prototype-poisoning
 * protection), so the body limit, the empty-body and malformed-JSON errors
 * keep their codes and shape.
 */
export function registerJsonParser(fastify: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  const parse = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (req: FastifyRequest, body: string, done) => {
    if (jsonDepthExceeds(body, maxDepth)) {
      done(new LatchkeyError(ErrorCode.JSON_TOO_DEEP, `JSON nested deeper than ${maxDepth} levels`), undefined);
      return;
    }
    parse(req, body, done);
  });
}

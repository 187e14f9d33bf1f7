import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const CONSOLE_PATH = '/console';

/**
 * The console's Content-Security-Policy: its own script and stylesheet only, API calls to this origin
 * only, no inline script or style, no framing, no plugins, and Trusted Types enforced so that no string
 * can ever reach an HTML sink (the console never sets innerHTML; if a library ever did, the browser
 * would refuse rather than render it).
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The browser hardening headers every answer under /console carries, a 404 included. */
function hardened(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin')
    .header('permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()');
}

/** Where `npm run build` writes the console (dist/console), seen from dist/apps/api/src/console. */
export function defaultConsoleDir(): string {
  return path.resolve(__dirname, '..', '..', '..', '..', 'console');
}

/**
 * Serve the built console at /console: the handful of files in `dir`, read once at start and held in
 * memory. Only names found there are served (no path from a request ever reaches the filesystem), every
 * answer carries the CSP and the other browser hardening headers, and nothing is cached without
 * revalidation, so browsers load a new build as soon as a restarted api serves it. Returns false when the
 * console was not built.
 */
export function registerConsole(fastify: FastifyInstance, dir = defaultConsoleDir()): boolean {
  if (!fs.existsSync(path.join(dir, 'index.html'))) return false;
  const assets = new Map<string, Asset>();
  for (const name of fs.readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (!type) continue;
    const body = fs.readFileSync(path.join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  const send = (req: FastifyRequest, reply: FastifyReply, asset: Asset) => {
    void hardened(reply).header('cache-control', 'no-cache').header('etag', asset.etag);
    if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };
  const index = assets.get('index.html')!;
  fastify.get(CONSOLE_PATH, (_req, reply) => reply.redirect(`${CONSOLE_PATH}/`, 301));
  fastify.get(`${CONSOLE_PATH}/`, (req, reply) => send(req, reply, index));
  fastify.get<{ Params: { file: string } }>(`${CONSOLE_PATH}/:file`, (req, reply) => {
    const asset = assets.get(req.params.file);
    if (!asset) {
      return hardened(reply).code(404).send({ error: { code: 'NOT_FOUND', message: 'not found', requestId: String(req.id) } });
    }
    return send(req, reply, asset);
  });
  return true;
}

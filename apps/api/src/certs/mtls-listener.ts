import * as fs from 'node:fs';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { CaStore, CertVerifier, CertVerifyResult } from '@latchkey/certs';
import type { AppConfig } from '@latchkey/config';
import { RevocationBus } from '@latchkey/revocation';
import { answerClientError, requestTimeoutOptions } from '../http/request-timeouts';

const REFRESH_EVERY_MS = 60_000;

export interface MtlsListener {
  url: string;
  close(): Promise<void>;
}

/**
 * The optional HTTPS + mTLS listener: the same routes as the plain listener,
 * reachable only with a client certificate issued by the latchkey CA. The TLS
 * layer checks chain and CRL (re-read every minute and soon after each
 * revocation); each request is also checked against the revocation set fed by
 * the revocation bus, so a revoked certificate is refused at once, even on a
 * kept-alive connection and before Vault has rebuilt its CRL.
 */
export async function startMtlsListener(app: NestFastifyApplication, config: AppConfig): Promise<MtlsListener | null> {
  const tls = config.certs.tls;
  if (!tls) return null;
  const log = new Logger('MtlsListener');
  const ca = app.get(CaStore);
  const verifier = app.get(CertVerifier);
  const bus = app.get(RevocationBus);
  const fastify = app.getHttpAdapter().getInstance();
  const cert = fs.readFileSync(tls.certFile);
  const key = fs.readFileSync(tls.keyFile);

  const context = async () => {
    const crl = await ca.crlPem(true).catch(() => '');
    return { cert, key, ca: await ca.chainPem(), ...(crl ? { crl } : {}) };
  };
  /** First full verdict per connection; later requests only re-check revocation and expiry. */
  const verdicts = new WeakMap<TLSSocket, CertVerifyResult>();

  const server = https.createServer(
    // The same bound on slow requests as the plain listener.
    { ...(await context()), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', ...requestTimeoutOptions(config) },
    (req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const socket = req.socket as TLSSocket;
        let verdict = verdicts.get(socket);
        if (!verdict) {
          const peer = socket.getPeerX509Certificate();
          verdict = peer ? await verifier.verifyX509(peer) : undefined;
          if (verdict) verdicts.set(socket, verdict);
        }
        const ok = verdict?.valid && verdict.serial && !verifier.isKnownRevoked(verdict.serial) && Date.parse(verdict.expiresAt ?? '') > Date.now();
        if (!ok) {
          const code = verdict ? (verdict.valid ? 'REVOKED' : verdict.code) : 'MISSING';
          res.writeHead(403, { 'content-type': 'application/json; charset=utf-8', 'x-latchkey-code': code, connection: 'close' });
          res.end(JSON.stringify({ error: { code: 'FORBIDDEN', message: `client certificate not accepted (${code})`, requestId: '' } }));
          return;
        }
        fastify.routing(req, res);
      })().catch((err: unknown) => {
        // No verdict (Vault unreachable for a certificate never seen): fail closed.
        log.warn(`mTLS request refused: ${(err as Error).message}`);
        if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '2' });
        res.end(JSON.stringify({ error: { code: 'VAULT_UNAVAILABLE', message: 'cannot check the client certificate now', requestId: '' } }));
      });
    },
  );
  server.on('clientError', answerClientError);
  server.on('tlsClientError', (err) => log.debug?.(`TLS handshake refused: ${err.message}`));

  let refreshing: NodeJS.Timeout | undefined;
  const refresh = () => {
    context()
      .then((c) => server.setSecureContext(c))
      .catch((err: unknown) => log.warn(`could not refresh the mTLS CA/CRL: ${(err as Error).message}`));
  };
  const timer = setInterval(refresh, REFRESH_EVERY_MS);
  timer.unref();
  const unsubscribe = bus.onRevoked((m) => {
    if (m.kind !== 'cert' || refreshing) return;
    // Coalesce bursts of revocations into one CRL download.
    refreshing = setTimeout(() => {
      refreshing = undefined;
      refresh();
    }, 500);
    refreshing.unref();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(tls.port, tls.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : tls.port;
  const url = `https://${tls.host.includes(':') ? `[${tls.host}]` : tls.host}:${port}`;
  return {
    url,
    close: async () => {
      clearInterval(timer);
      if (refreshing) clearTimeout(refreshing);
      unsubscribe();
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

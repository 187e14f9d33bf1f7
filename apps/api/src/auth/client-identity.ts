import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CertVerifier, CertVerifyResult } from '@latchkey/certs';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { ipInCidrs, normaliseCidr } from '@latchkey/keys';
import { clientAddress } from '@latchkey/verify';

/** Who is on the other end of a request, as far as latchkey can prove it. */
export interface ClientIdentity {
  /** The end client's address: the socket peer, or X-Forwarded-For through a trusted proxy only. */
  ip: string | undefined;
  /**
   * The serial of the client certificate presented with this request, if latchkey's CA issued it and it is
   * valid and not revoked, else null. Lazy: only keys bound to a certificate pay for parsing one.
   */
  presentedCertSerial: () => Promise<string | null>;
}

/** The serial of a presented certificate if latchkey's CA issued it and it is valid and not revoked, else null. */
export async function validSerial(check: () => Promise<CertVerifyResult>): Promise<string | null> {
  try {
    const r = await check();
    return r.valid ? r.serial : null;
  } catch {
    return null; // malformed XFCC or PEM: no usable certificate
  }
}

/**
 * The one place that decides a request's client address and presented
 * certificate. Verify, forward auth, self-service and admin calls with a key
 * all read them from here, so a key's bindings are checked the same way on
 * every route where it authenticates.
 */
@Injectable()
export class ClientIdentityResolver {
  private readonly trusted: (req: FastifyRequest) => boolean;
  private readonly header: AppConfig['http']['certHeader'];

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly certs: CertVerifier,
  ) {
    this.trusted = certHeaderPeer(config);
    this.header = config.http.certHeader;
    const logger = new Logger(ClientIdentityResolver.name);
    if (config.http.trustProxy && 'hops' in config.http.trustProxy && config.http.certHeaderProxies.length === 0) {
      logger.warn(
        'LATCHKEY_TRUST_PROXY is a hop count: client-certificate headers (X-Forwarded-Client-Cert, X-Client-Cert) are ignored. ' +
          'List the proxies that set them in LATCHKEY_CERT_HEADER_PROXIES (or give LATCHKEY_TRUST_PROXY as addresses).',
      );
    } else if (config.http.certHeaderProxies.length && !this.header) {
      logger.warn('No LATCHKEY_CERT_HEADER: certificate headers from proxies are ignored. Name the one header your proxy sets and overwrites.');
    }
  }

  of(req: FastifyRequest): ClientIdentity {
    return { ip: clientAddress(req.ip), presentedCertSerial: () => this.presentedCert(req) };
  }

  /**
   * The client certificate comes from our own mTLS listener's handshake, or —
   * only from a listed proxy (LATCHKEY_CERT_HEADER_PROXIES, else an address-list
   * LATCHKEY_TRUST_PROXY) — from the one header LATCHKEY_CERT_HEADER names:
   * Envoy's X-Forwarded-Client-Cert or an URL-encoded PEM in X-Client-Cert
   * (nginx $ssl_client_escaped_cert). A certificate is public, so a header from
   * anyone else proves nothing; and a proxy only overwrites the header it sets
   * (nginx auth_request passes every other client header on), so the other one
   * is never read.
   */
  private async presentedCert(req: FastifyRequest): Promise<string | null> {
    const sock = req.raw.socket as TLSSocket;
    if (typeof sock.getPeerCertificate === 'function' && sock.authorized) {
      const peer = sock.getPeerCertificate(false);
      if (peer?.raw) return validSerial(() => this.certs.verifyPem(new X509Certificate(peer.raw).toString()));
    }
    if (!this.header || !this.trusted(req)) return null;
    const value = req.headers[this.header];
    if (typeof value !== 'string' || !value) return null;
    return this.header === 'x-forwarded-client-cert' ? validSerial(() => this.certs.verifyXfcc(value)) : validSerial(() => this.certs.verifyPem(safeDecode(value)));
  }
}

/**
 * Is the TCP peer one of the proxies whose certificate headers may be believed? Only an explicit address
 * list can say so: a hop count tells how many X-Forwarded-For entries to skip, not who the peer is, and
 * believing any peer would let every client that reaches latchkey directly present anyone's (public)
 * certificate.
 */
function certHeaderPeer(config: AppConfig): (req: FastifyRequest) => boolean {
  const cidrs = config.http.certHeaderProxies.map((a) => normaliseCidr(a)).filter((c): c is string => c !== null);
  if (cidrs.length === 0) return () => false;
  return (req) => ipInCidrs(req.socket.remoteAddress ?? '', cidrs);
}

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return '';
  }
}

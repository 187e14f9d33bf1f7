import { createHash, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { PresentedCertId } from '@latchkey/authz';
import { certLineage, CertVerifier, CertVerifyResult, parseOneCert, xfccCertificate } from '@latchkey/certs';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { ipInCidrs, normaliseCidr } from '@latchkey/keys';
import { clientAddress } from '@latchkey/verify';

/** Who is on the other end of a request, as far as latchkey can prove it. */
export interface ClientIdentity {
  /** The end client's address: the socket peer, or X-Forwarded-For through a trusted proxy only. */
  ip: string | undefined;
  /**
   * The serial and renewal lineage of the client certificate presented with this request, if latchkey's CA
   * issued it and it is valid and not revoked, else null. Lazy: only keys bound to a certificate pay for
   * parsing one. The lineage is read from the certificate itself (a CA-signed URI SAN): no lookup.
   */
  presentedCertSerial: () => Promise<PresentedCertId | null>;
  /** RFC 8705 `x5t#S256` (base64url SHA-256 of the DER) of that same certificate when it is valid, else null. */
  presentedCertThumbprint: () => Promise<string | null>;
}

/** A presented certificate latchkey verified: its serial, lineage and RFC 8705 thumbprint. */
export interface PresentedCert {
  id: PresentedCertId;
  thumbprint: string;
}

export function thumbprintOf(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64url');
}

/**
 * The serial and thumbprint of a presented certificate, verified once however many checks ask (a verify
 * may need both the key's serial binding and a token's thumbprint binding). Null when none, or invalid.
 */
export function presentedOnce(cert: () => X509Certificate | null, verify: (c: X509Certificate) => Promise<CertVerifyResult>): { serial: () => Promise<PresentedCertId | null>; thumbprint: () => Promise<string | null> } {
  let p: Promise<PresentedCert | null> | null = null;
  const get = () =>
    (p ??= (async () => {
      let c: X509Certificate | null;
      try {
        c = cert();
      } catch {
        return null;
      }
      if (!c) return null;
      const r = await verify(c).catch(() => null);
      // A certificate stating a malformed lineage satisfies no binding (and no thumbprint either: fail closed).
      const lineage = r?.valid && r.serial ? certLineage(c) : null;
      return lineage && r?.serial ? { id: { serial: r.serial, ...lineage }, thumbprint: thumbprintOf(c.raw) } : null;
    })());
  return { serial: async () => (await get())?.id ?? null, thumbprint: async () => (await get())?.thumbprint ?? null };
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
    const presented = presentedOnce(() => this.presentedCert(req), (c) => this.certs.verifyX509(c));
    return { ip: clientAddress(req.ip), presentedCertSerial: presented.serial, presentedCertThumbprint: presented.thumbprint };
  }

  /** A certificate a gateway hands over in a verify body (PEM or XFCC), verified once. */
  fromBody(b: { certificate?: string; xfcc?: string }): { serial: () => Promise<PresentedCertId | null>; thumbprint: () => Promise<string | null> } | null {
    if (b.certificate) return presentedOnce(() => parseOneCert(b.certificate!), (c) => this.certs.verifyX509(c));
    if (b.xfcc) {
      return presentedOnce(() => xfccCertificate(b.xfcc!), (c) => this.certs.verifyX509(c));
    }
    return null;
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
  private presentedCert(req: FastifyRequest): X509Certificate | null {
    const sock = req.raw.socket as TLSSocket;
    if (typeof sock.getPeerCertificate === 'function' && sock.authorized) {
      const peer = sock.getPeerCertificate(false);
      if (peer?.raw) return new X509Certificate(peer.raw);
    }
    if (!this.header || !this.trusted(req)) return null;
    const value = req.headers[this.header];
    if (typeof value !== 'string' || !value) return null;
    return this.header === 'x-forwarded-client-cert' ? xfccCertificate(value) : parseOneCert(safeDecode(value));
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

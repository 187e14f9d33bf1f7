import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { encodeKey } from '@latchkey/keys';

/** A well-formed latchkey key around a random token that no Vault has issued (passes the checksum). */
export function randomKey(): string {
  return encodeKey(`s.${randomBytes(18).toString('base64url').replace(/[-_]/g, 'A').slice(0, 24)}`);
}

/** A random string shaped like an OpenBao service token. */
export function randomVaultToken(): string {
  return `s.${randomBytes(18).toString('base64url').replace(/[-_]/g, 'B').slice(0, 24)}`;
}

/** An HTTP request from a chosen local address (127.0.0.2 is a different client than 127.0.0.1 on loopback). */
export function requestFrom(
  localAddress: string,
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; body: any }> {
  const u = new URL(path, base);
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, localAddress, agent: false, headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...(opts.headers ?? {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let body: any = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export interface Operation {
  method: string;
  /** The path with every parameter filled in with a harmless value. */
  path: string;
  template: string;
  security: string[];
}

/**
 * Every operation of the live OpenAPI document, so the class tests cover routes added later without
 * anyone remembering to list them.
 */
export async function operations(base: string): Promise<Operation[]> {
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { security?: Array<Record<string, unknown>> }>> };
  const out: Operation[] = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => (/serial/i.test(name) ? '01:02:03' : /keyId/i.test(name) ? 'AAAAAAAAAAAAAAAAAAAAAAAA' : 'probe'));
      out.push({ method: method.toUpperCase(), path, template, security: (op.security ?? []).flatMap((s) => Object.keys(s)) });
    }
  }
  return out;
}

/** Vault's audit log as request entries appended since `offset` (the file device writes before answering). */
export function auditRequestsSince(file: string, offset: number): Array<{ path: string; accessor?: string }> {
  const text = fs.readFileSync(file).subarray(offset).toString('utf8');
  const out: Array<{ path: string; accessor?: string }> = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as { type?: string; request?: { path?: string }; auth?: { accessor?: string } };
      if (e.type === 'request' && e.request?.path) out.push({ path: e.request.path, accessor: e.auth?.accessor });
    } catch {
      // a partial last line
    }
  }
  return out;
}

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '@latchkey/devstack';
import { RunningApi, startApi } from './app';
import { uniqueId } from './stack';

export interface ServerIdentity {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  /** Remove the files. */
  remove(): void;
}

/** A self-signed server certificate for 127.0.0.1 (for the api's mTLS listener), in a temporary directory. */
export function serverIdentity(): ServerIdentity {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-tls-'));
  const name = uniqueId('srv');
  const keyFile = path.join(dir, `${name}.key`);
  fs.writeFileSync(keyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  const certFile = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=127.0.0.1', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1', '-out', certFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return {
    cert: fs.readFileSync(certFile, 'utf8'),
    key: fs.readFileSync(keyFile, 'utf8'),
    certFile,
    keyFile,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface MtlsApi {
  api: RunningApi;
  /** The HTTPS + mTLS listener's base URL. */
  tlsBase: string;
  /** A private scratch folder for client certificate files (removed by close). */
  dir: string;
  /** The listener's self-signed certificate: what a client trusts (curl --cacert). */
  serverCertFile: string;
  close(): Promise<void>;
}

/** An api with its HTTPS + mTLS listener on a free port (a fresh self-signed server certificate). */
export async function startMtlsApi(env: NodeJS.ProcessEnv = {}): Promise<MtlsApi> {
  const srv = serverIdentity();
  const tlsPort = await freePort();
  const api = await startApi({ ...env, LATCHKEY_TLS_PORT: String(tlsPort), LATCHKEY_TLS_CERT: srv.certFile, LATCHKEY_TLS_KEY: srv.keyFile }, { avoidPorts: [tlsPort] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-mtls-'));
  return {
    api,
    tlsBase: `https://127.0.0.1:${tlsPort}`,
    dir,
    serverCertFile: srv.certFile,
    close: async () => {
      await api.close();
      srv.remove();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

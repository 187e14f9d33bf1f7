import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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

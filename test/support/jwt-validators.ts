import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { ensureVenvPackage, projectRoot } from '@latchkey/devstack';

export interface Validation {
  ok: boolean;
  payload?: Record<string, unknown>;
  error?: string;
}

const PYJWT = 'PyJWT[crypto]==2.10.1';

/** Validate with `jose` (npm), in its own process: latchkey's verification code is not involved. */
export function validateWithJose(token: string, jwksUrl: string, issuer: string, audience: string): Validation {
  const script = path.join(projectRoot(), 'test', 'support', 'validators', 'jose-validate.mjs');
  return JSON.parse(execFileSync(process.execPath, [script, token, jwksUrl, issuer, audience], { encoding: 'utf8', timeout: 30_000 })) as Validation;
}

/** Validate with PyJWT (PyPI), installed into the project's virtualenv on first use. */
export function validateWithPyJwt(token: string, jwksUrl: string, issuer: string, audience: string): Validation {
  const python = ensureVenvPackage(PYJWT, 'python');
  const script = path.join(projectRoot(), 'test', 'support', 'validators', 'pyjwt_validate.py');
  return JSON.parse(execFileSync(python, [script, token, jwksUrl, issuer, audience], { encoding: 'utf8', timeout: 60_000 })) as Validation;
}

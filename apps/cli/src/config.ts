import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './output';

/** Where the CLI reaches the api and with which credential. The credential is never printed. */
export interface CliConfig {
  url: string;
  vaultToken?: string;
  managementKey?: string;
}

const DEV_ENV = path.join('.latchkey', 'dev.env');

/** KEY=VALUE lines as `npm run dev` writes them (no quoting, no expansion); anything else is ignored. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

/**
 * LATCHKEY_URL and VAULT_TOKEN (or LATCHKEY_MANAGEMENT_KEY) from the environment; each one that is unset
 * is taken from .latchkey/dev.env in the current directory, so a shell next to `npm run dev` needs no setup.
 * The process environment is read here only, once.
 */
export function loadConfig(opts: { url?: string; needCredential: boolean }, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): CliConfig {
  const pick = (v: string | undefined): string | undefined => (v && v.trim() !== '' ? v.trim() : undefined);
  let file: Record<string, string> = {};
  const devEnv = path.join(cwd, DEV_ENV);
  const fromEnv = { url: pick(env.LATCHKEY_URL), token: pick(env.VAULT_TOKEN), mkey: pick(env.LATCHKEY_MANAGEMENT_KEY) };
  if (!fromEnv.url || (!fromEnv.token && !fromEnv.mkey)) {
    try {
      file = parseEnvFile(fs.readFileSync(devEnv, 'utf8'));
    } catch {
      // No dev.env: only the environment counts.
    }
  }
  const url = pick(opts.url) ?? fromEnv.url ?? pick(file.LATCHKEY_URL);
  // A credential set in the environment wins as a pair: a management key in the environment is not
  // combined with the dev stack's root token from the file.
  const envHasCredential = Boolean(fromEnv.token || fromEnv.mkey);
  const vaultToken = envHasCredential ? fromEnv.token : pick(file.VAULT_TOKEN);
  const managementKey = envHasCredential ? fromEnv.mkey : pick(file.LATCHKEY_MANAGEMENT_KEY);
  if (!url) throw new UsageError(`LATCHKEY_URL is not set (and no ${DEV_ENV} in ${cwd}); set it or pass --url`);
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
  } catch {
    throw new UsageError('LATCHKEY_URL is not an http(s) URL');
  }
  if (opts.needCredential && !vaultToken && !managementKey) {
    throw new UsageError(`no credential: set VAULT_TOKEN or LATCHKEY_MANAGEMENT_KEY (or run in a directory with ${DEV_ENV})`);
  }
  return { url, vaultToken, managementKey };
}

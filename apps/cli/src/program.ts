import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { apiErrorFrom, LatchkeyClient, type Schemas } from '@latchkey/client';
import { checkWritable, readStdin, writePrivate } from './files';
import { EXIT_CODES_HELP, Exit, fields, table, UsageError } from './output';

/** What a command hands back: text for people, a value for --json, and its exit code. */
interface Outcome {
  human: string;
  json: unknown;
  exitCode?: number;
}

interface Globals {
  json?: boolean;
  url?: string;
}

type KeyLike = Schemas['KeyResponse'] | Schemas['KeyDetailResponse'];

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
const positiveInt = (v: string): number => {
  if (!/^[1-9][0-9]*$/.test(v)) throw new InvalidArgumentError('a positive integer');
  return Number(v);
};
const nonNegativeNumber = (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('a non-negative number');
  return n;
};

/**
 * A key record without the secrets a read must not echo: the key itself and a wrapping token are shown
 * only by the call that created them (create, rotate), never by get/list/renew.
 */
function withoutSecrets<T extends Partial<KeyLike>>(k: T): T {
  const { key: _key, wrapToken: _wrap, ...rest } = k;
  return rest as T;
}

function keyFields(k: KeyLike): string {
  const live = 'live' in k ? k.live : undefined;
  return fields([
    ['keyId', k.keyId],
    ['appId', k.appId],
    ['name', k.name],
    ['profile', k.profile],
    ['state', k.state],
    ['policies', k.policies],
    ['cidrs', k.cidrs],
    ['createdAt', k.createdAt],
    ['expiresAt', k.expiresAt],
    ...(k.previousKeyId ? ([['previousKeyId', k.previousKeyId]] as [string, string][]) : []),
    ...(k.successorKeyId ? ([['successorKeyId', k.successorKeyId]] as [string, string][]) : []),
    ...(k.revokeAt ? ([['revokeAt', k.revokeAt]] as [string, string][]) : []),
    ...(k.revokedAt ? ([['revokedAt', k.revokedAt]] as [string, string][]) : []),
    ...(k.certSerial ? ([['certSerial', k.certSerial]] as [string, string][]) : []),
    ...(live ? ([['ttlSeconds', live.ttlSeconds], ['numUsesLeft', live.numUsesLeft]] as [string, number][]) : []),
    ...(k.warnings?.length ? ([['warnings', k.warnings]] as [string, string[]][]) : []),
  ]);
}

/** The once-only secret of a create or rotate, for people: on its own line, with the warning. */
function shownOnce(k: KeyLike): string {
  if (k.key) return `\nkey (shown once, store it now):\n${k.key}\n`;
  if (k.wrapToken) return `\nwrapping token (single use, expires in ${k.wrapTtl ?? '?'}; unwrap with POST /v1/keys/unwrap):\n${k.wrapToken}\n`;
  if (k.replayed) return '\n(replayed: this Idempotency-Key already minted this key; the key is not shown again)\n';
  return '';
}

function keysTable(items: KeyLike[]): string {
  return table(['keyId', 'app', 'name', 'profile', 'state', 'expiresAt'], items.map((k) => [k.keyId, k.appId, k.name, k.profile, k.state, k.expiresAt]));
}

function certFields(c: Omit<Schemas['CertResponse'], never>): string {
  return fields([
    ['serial', c.serial],
    ['appId', c.appId],
    ['commonName', c.commonName],
    ['uriSans', c.uriSans],
    ['ipSans', c.ipSans],
    ['state', c.state],
    ['source', c.source],
    ['keyType', c.keyType],
    ['notBefore', c.notBefore],
    ['expiresAt', c.expiresAt],
    ['renewAt', c.renewAt],
    ['autoRenew', c.autoRenew],
    ['lineage', c.lineage],
    ['generation', c.generation],
    ...(c.previousSerial ? ([['previousSerial', c.previousSerial]] as [string, string][]) : []),
    ...(c.revokeAt ? ([['revokeAt', c.revokeAt]] as [string, string][]) : []),
  ]);
}

/**
 * The api's data, or its error as a LatchkeyApiError (the client's own mapping: only the api's error body
 * and status, never anything of the request), for the calls outside the client's facade.
 */
async function data<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data: d, error, response } = await call;
  if (!response.ok) throw apiErrorFrom(response, error);
  return d as T;
}

/** A CSR file's PEM; an unreadable file is the caller's mistake (exit 1), not the api's. */
function readCsr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${file}`);
  }
}

/** The optional fields `certs issue` and `certs sign` share, sent only when given. */
function certRequestOptions(o: { uriSan?: string[]; ipSan?: string[]; ttl?: string; autoRenew?: boolean }): Partial<Schemas['IssueCertDto']> {
  return {
    ...(o.uriSan ? { uriSans: o.uriSan } : {}),
    ...(o.ipSan ? { ipSans: o.ipSan } : {}),
    ...(o.ttl ? { ttl: o.ttl } : {}),
    ...(o.autoRenew ? { autoRenew: true } : {}),
  };
}

/** Output file names of a certificate: <dir>/<name>.crt, <name>.key, <name>.ca.crt. */
function certPaths(o: { outDir: string; name: string }, withKey: boolean): { cert: string; key?: string; ca: string } {
  // The stem defaults to the common name, which is the api's to accept, not a path: no separators, no dotfiles.
  if (!/^[A-Za-z0-9._-]+$/.test(o.name) || o.name.startsWith('.')) {
    throw new UsageError(`file name ${JSON.stringify(o.name)} is not a plain file name ([A-Za-z0-9._-], not starting with a dot); choose one with --name`);
  }
  const base = path.join(o.outDir, o.name);
  return { cert: `${base}.crt`, ...(withKey ? { key: `${base}.key` } : {}), ca: `${base}.ca.crt` };
}

/** Store what an issue/sign/renew returned; the private key only into its 0600 file, never to stdout. */
function storeCert(
  c: { certificate: string; privateKey?: string; caChain: string[] },
  files: { cert: string; key?: string; ca: string },
  force: boolean,
): { certFile: string; keyFile?: string; caFile: string } {
  if (c.privateKey && !files.key) throw new Error('the api returned a private key but no key file was prepared');
  if (c.privateKey && files.key) writePrivate(files.key, c.privateKey, force);
  writePrivate(files.cert, c.certificate, force);
  writePrivate(files.ca, c.caChain.join('\n'), force);
  return { certFile: files.cert, ...(c.privateKey && files.key ? { keyFile: files.key } : {}), caFile: files.ca };
}

function certWithoutKey<T extends { privateKey?: string; certificate?: string | null; caChain?: string[] }>(c: T): Omit<T, 'privateKey' | 'certificate' | 'caChain'> {
  const { privateKey: _k, certificate: _c, caChain: _ca, ...rest } = c;
  return rest;
}

export type Runner = (cmd: Command, fn: (client: () => LatchkeyClient, g: Globals) => Promise<Outcome>) => Promise<void>;

/**
 * The command tree. `run` turns each action's Outcome (or thrown error) into output and an exit code;
 * it is passed in so main.ts owns the process (stdout, stderr, exit).
 */
export function buildProgram(run: Runner): Command {
  const program = new Command('latchkey')
    .description('Manage latchkey API keys and mTLS client certificates from the shell.')
    .option('--json', 'machine-readable JSON on stdout (errors as JSON on stderr)')
    .option('--url <url>', 'the api URL (default: LATCHKEY_URL, else .latchkey/dev.env)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP);

  const authed = (cmd: Command, fn: (c: LatchkeyClient, g: Globals) => Promise<Outcome>) =>
    run(cmd, async (client, g) => fn(client(), g));

  // ---- profiles
  const profiles = program.command('profiles').description('key profiles (read-only here; PUT /v1/profiles to change)');
  profiles
    .command('list')
    .description('list profiles')
    .action((_o, cmd: Command) =>
      authed(cmd, async (c) => {
        const res = await c.profiles.list();
        return {
          json: res,
          human: table(['name', 'ttl', 'maxTtl', 'policies', 'rotation'], res.items.map((p) => [p.name, p.ttl, p.maxTtl, p.allowedPolicies.join(','), p.rotation ? String(p.rotation.every) : null])),
        };
      }),
    );
  profiles
    .command('get <name>')
    .description('show one profile')
    .action((name: string, _o, cmd: Command) =>
      authed(cmd, async (c) => {
        const p = await c.profiles.get(name);
        return {
          json: p,
          human: fields([
            ['name', p.name],
            ['role', p.role],
            ['allowedPolicies', p.allowedPolicies],
            ['ttl', p.ttl],
            ['maxTtl', p.maxTtl],
            ['period', p.period],
            ['numUses', p.numUses],
            ['cidrs', p.cidrs],
            ['rotation', p.rotation ? `every ${p.rotation.every}${p.rotation.grace !== undefined ? `, grace ${p.rotation.grace}` : ''}` : null],
            ['selfService', `renew=${p.selfService.renew} rotate=${p.selfService.rotate}`],
            ['limits', p.limits.map((l) => `${l.name}: ${l.limit}/${l.window} (${l.mode})`)],
            ['tokenTtl', p.tokenTtl],
          ]),
        };
      }),
    );

  // ---- keys
  const keys = program.command('keys').description('API keys');
  keys
    .command('create')
    .description('mint a key; the key is printed once (with --json: in the JSON, field "key")')
    .requiredOption('--app <appId>', 'the app the key belongs to')
    .requiredOption('--name <name>', 'a name for the key, unique per app')
    .option('--profile <profile>', 'the profile to mint from', 'default')
    .option('--ttl <duration>', 'lifetime, e.g. 24h (default: the profile\'s)')
    .option('--policy <policy>', 'a policy for the key (repeatable; must be allowed by the profile)', collect)
    .option('--cidr <cidr>', 'restrict use to this network (repeatable)', collect)
    .option('--meta <key=value>', 'metadata (repeatable)', collect)
    .option('--wrap-ttl <duration>', 'return a single-use wrapping token instead of the key')
    .option('--cert-serial <serial>', 'bind the key to a client certificate (lineage)')
    .option('--idempotency-key <id>', 'replaying the same id mints nothing new (default: a random one)')
    .action((o: { app: string; name: string; profile: string; ttl?: string; policy?: string[]; cidr?: string[]; meta?: string[]; wrapTtl?: string; certSerial?: string; idempotencyKey?: string }, cmd: Command) =>
      authed(cmd, async (c) => {
        const meta: Record<string, string> = {};
        for (const kv of o.meta ?? []) {
          const i = kv.indexOf('=');
          if (i <= 0) throw new UsageError(`--meta ${JSON.stringify(kv)}: expected key=value`);
          meta[kv.slice(0, i)] = kv.slice(i + 1);
        }
        const k = await c.keys.mint(
          {
            appId: o.app,
            name: o.name,
            profile: o.profile,
            ...(o.ttl ? { ttl: o.ttl } : {}),
            ...(o.policy ? { policies: o.policy } : {}),
            ...(o.cidr ? { cidrs: o.cidr } : {}),
            ...(o.meta ? { meta } : {}),
            ...(o.wrapTtl ? { wrapTtl: o.wrapTtl } : {}),
            ...(o.certSerial ? { certSerial: o.certSerial } : {}),
          },
          o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {},
        );
        return { json: k, human: keyFields(k) + shownOnce(k) };
      }),
    );
  keys
    .command('list')
    .description('list keys (newest pages first as the api orders them)')
    .option('--app <appId>', 'only this app\'s keys')
    .option('--profile <profile>', 'only keys of this profile')
    .addOption(new Option('--state <state>', 'only keys in this state').choices(['active', 'rotating', 'revoked', 'expired']))
    .option('--limit <n>', 'page size', positiveInt)
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--all', 'follow every page')
    .action((o: { app?: string; profile?: string; state?: 'active' | 'rotating' | 'revoked' | 'expired'; limit?: number; cursor?: string; all?: boolean }, cmd: Command) =>
      authed(cmd, async (c) => {
        const items: KeyLike[] = [];
        let cursor = o.cursor;
        let next: string | null = null;
        do {
          const page = await c.keys.list({ appId: o.app, profile: o.profile, state: o.state, limit: o.limit, cursor });
          items.push(...page.items.map(withoutSecrets));
          next = page.nextCursor;
          cursor = next ?? undefined;
        } while (o.all && next);
        const more = next ? `(more: --cursor ${next})\n` : '';
        return { json: { items, nextCursor: next }, human: keysTable(items) + more };
      }),
    );
  keys
    .command('get <keyId>')
    .description('show a key (its metadata and live Vault state; never the key itself)')
    .action((keyId: string, _o, cmd: Command) =>
      authed(cmd, async (c) => {
        const k = withoutSecrets(await c.keys.get(keyId));
        return { json: k, human: keyFields(k) };
      }),
    );
  keys
    .command('renew <keyId>')
    .description('extend a key\'s lifetime')
    .option('--increment <duration>', 'by how much, e.g. 12h (default: the profile\'s ttl)')
    .action((keyId: string, o: { increment?: string }, cmd: Command) =>
      authed(cmd, async (c) => {
        const k = withoutSecrets(await c.keys.renew(keyId, o.increment ? { increment: o.increment } : {}));
        return { json: k, human: keyFields(k as KeyLike) };
      }),
    );
  keys
    .command('rotate <keyId>')
    .description('mint a successor key (printed once) and revoke the old one after the grace period')
    .option('--grace <duration>', 'how long the old key keeps working, e.g. 1h (default: the profile\'s)')
    .option('--deliver', 'also deliver the successor to the app (KV / webhook) as scheduled rotation does')
    .action((keyId: string, o: { grace?: string; deliver?: boolean }, cmd: Command) =>
      authed(cmd, async (c) => {
        const k = await c.keys.rotate(keyId, { ...(o.grace ? { grace: o.grace } : {}), ...(o.deliver ? { deliver: true } : {}) });
        return { json: k, human: keyFields(k) + shownOnce(k) };
      }),
    );
  keys
    .command('revoke <keyId>')
    .description('revoke a key now')
    .action((keyId: string, _o, cmd: Command) =>
      authed(cmd, async (c) => {
        await c.keys.revoke(keyId);
        return { json: { keyId, revoked: true }, human: `revoked ${keyId}\n` };
      }),
    );
  keys
    .command('revoke-all')
    .description('revoke every key of an app (incident response)')
    .requiredOption('--app <appId>', 'the app')
    .option('--reason <text>', 'recorded in the audit trail')
    .option('--yes', 'confirm: this cannot be undone')
    .action((o: { app: string; reason?: string; yes?: boolean }, cmd: Command) =>
      authed(cmd, async (c) => {
        if (!o.yes) throw new UsageError(`revoke-all revokes every key of app ${o.app}; add --yes to confirm`);
        const res = await data(c.api.POST('/v1/apps/{appId}/keys/revoke-all', { params: { path: { appId: o.app }, query: o.reason ? { reason: o.reason } : {} } }));
        return { json: { appId: o.app, ...res }, human: `revoked ${res.revoked} key(s) of app ${o.app}\n` };
      }),
    );

  // ---- certs
  const certs = program.command('certs').description('mTLS client certificates');
  const fileOptions = (cmd: Command) =>
    cmd
      .option('--out-dir <dir>', 'where to write the files', '.')
      .option('--force', 'overwrite existing files');
  fileOptions(
    certs
      .command('issue')
      .description('issue a certificate; writes <name>.crt, <name>.key (the private key, only here) and <name>.ca.crt, mode 0600')
      .requiredOption('--app <appId>', 'the app bound into the certificate')
      .requiredOption('--cn <commonName>', 'subject common name')
      .option('--uri-san <uri>', 'URI SAN, e.g. spiffe://... (repeatable)', collect)
      .option('--ip-san <ip>', 'IP SAN (repeatable)', collect)
      .option('--ttl <duration>', 'lifetime, e.g. 72h')
      .option('--auto-renew', 'let the worker renew it before expiry')
      .option('--name <file>', 'file name stem (default: the common name)'),
  ).action((o: { app: string; cn: string; uriSan?: string[]; ipSan?: string[]; ttl?: string; autoRenew?: boolean; name?: string; outDir: string; force?: boolean }, cmd: Command) =>
    authed(cmd, async (c) => {
      const files = certPaths({ outDir: o.outDir, name: o.name ?? o.cn }, true);
      checkWritable([files.cert, files.key!, files.ca], Boolean(o.force));
      const res = await c.certs.issue({ appId: o.app, commonName: o.cn, ...certRequestOptions(o) });
      const written = storeCert(res, files, Boolean(o.force));
      return { json: { ...certWithoutKey(res), ...written }, human: certFields(res) + fields(Object.entries(written)) };
    }),
  );
  fileOptions(
    certs
      .command('sign')
      .description('have a CSR signed (the private key stays with you); writes <name>.crt and <name>.ca.crt, mode 0600')
      .requiredOption('--csr <file>', 'PEM certificate signing request')
      .requiredOption('--app <appId>', 'the app bound into the certificate')
      .option('--cn <commonName>', 'must equal the CSR\'s CN when given')
      .option('--uri-san <uri>', 'URI SAN (repeatable)', collect)
      .option('--ip-san <ip>', 'IP SAN (repeatable)', collect)
      .option('--ttl <duration>', 'lifetime, e.g. 72h')
      .option('--auto-renew', 'mark for renewal reminders (the worker cannot renew a CSR certificate by itself)')
      .option('--name <file>', 'file name stem (default: the CSR file\'s name without extension)'),
  ).action((o: { csr: string; app: string; cn?: string; uriSan?: string[]; ipSan?: string[]; ttl?: string; autoRenew?: boolean; name?: string; outDir: string; force?: boolean }, cmd: Command) =>
    authed(cmd, async (c) => {
      const csr = readCsr(o.csr);
      const files = certPaths({ outDir: o.outDir, name: o.name ?? path.basename(o.csr).replace(/\.(csr|pem|req)$/i, '') }, false);
      checkWritable([files.cert, files.ca], Boolean(o.force));
      const res = await c.certs.issue({ appId: o.app, csr, ...(o.cn ? { commonName: o.cn } : {}), ...certRequestOptions(o) });
      const written = storeCert(res, files, Boolean(o.force));
      return { json: { ...certWithoutKey(res), ...written }, human: certFields(res) + fields(Object.entries(written)) };
    }),
  );
  fileOptions(
    certs
      .command('renew <serial>')
      .description('renew a certificate; writes the new files like issue (sign) does')
      .option('--csr <file>', 'a new CSR (required for a certificate that was signed from a CSR)')
      .option('--grace <duration>', 'revoke the old certificate this long after renewal ("0s": at once)')
      .option('--ttl <duration>', 'lifetime of the new certificate')
      .option('--name <file>', 'file name stem (default: the common name)'),
  ).action((serial: string, o: { csr?: string; grace?: string; ttl?: string; name?: string; outDir: string; force?: boolean }, cmd: Command) =>
    authed(cmd, async (c) => {
      const csr = o.csr ? readCsr(o.csr) : undefined;
      // The file names need the common name: read the record first (cheap, and a NOT_FOUND stops here).
      const current = await data(c.api.GET('/v1/certs/{serial}', { params: { path: { serial } } }));
      // A new private key comes back only for a certificate whose key Vault generated (and no new CSR).
      const files = certPaths({ outDir: o.outDir, name: o.name ?? current.commonName }, current.source === 'issue' && !csr);
      checkWritable([files.cert, ...(files.key ? [files.key] : []), files.ca], Boolean(o.force));
      const res = await data(
        c.api.POST('/v1/certs/{serial}/renew', {
          params: { path: { serial } },
          body: { ...(csr ? { csr } : {}), ...(o.grace ? { grace: o.grace } : {}), ...(o.ttl ? { ttl: o.ttl } : {}) },
        }),
      );
      const written = storeCert(res, files, Boolean(o.force));
      return { json: { ...certWithoutKey(res), ...written }, human: certFields(res) + fields(Object.entries(written)) };
    }),
  );
  certs
    .command('revoke <serial>')
    .description('revoke a certificate now')
    .action((serial: string, _o, cmd: Command) =>
      authed(cmd, async (c) => {
        await data(c.api.DELETE('/v1/certs/{serial}', { params: { path: { serial } } }));
        return { json: { serial, revoked: true }, human: `revoked ${serial}\n` };
      }),
    );
  certs
    .command('ca')
    .description('print the issuing CA chain (PEM); public, needs no credential')
    .option('--out <file>', 'write it to this file instead (mode 0600)')
    .option('--force', 'overwrite --out')
    .action((o: { out?: string; force?: boolean }, cmd: Command) =>
      run(cmd, async (client) => {
        if (o.out) checkWritable([o.out], Boolean(o.force));
        const pem = await data(client().api.GET('/v1/certs/ca', { parseAs: 'text' }));
        const text = String(pem);
        if (o.out) {
          writePrivate(o.out, text, Boolean(o.force));
          return { json: { caFile: o.out }, human: `wrote ${o.out}\n` };
        }
        return { json: { pem: text }, human: text.endsWith('\n') ? text : text + '\n' };
      }),
    );
  certs
    .command('get <serial>')
    .description('show a certificate record and its live revocation state')
    .action((serial: string, _o, cmd: Command) =>
      authed(cmd, async (c) => {
        const res = await data(c.api.GET('/v1/certs/{serial}', { params: { path: { serial } } }));
        return { json: res, human: certFields(res) + (res.live ? fields([['revokedInVault', res.live.revoked]]) : '') };
      }),
    );

  // ---- verify
  program
    .command('verify <key>')
    .description('verify a key ("-": read it from stdin, so it stays out of the shell history); exit 4 when not valid')
    .option('--permission <perm>', 'required permission (repeatable)', collect)
    .option('--ip <ip>', 'the caller\'s IP, for CIDR-bound keys')
    .option('--cost <n>', 'credits/rate-limit cost', nonNegativeNumber)
    .action((keyArg: string, o: { permission?: string[]; ip?: string; cost?: number }, cmd: Command) =>
      run(cmd, async (client) => {
        const key = keyArg === '-' ? (await readStdin()).split(/\r?\n/)[0].trim() : keyArg;
        if (!key) throw new UsageError('no key on stdin');
        const v = await client().verify({
          key,
          ...(o.permission ? { permissions: o.permission } : {}),
          ...(o.ip ? { ip: o.ip } : {}),
          ...(o.cost !== undefined ? { cost: o.cost } : {}),
        });
        // The verdict never contains the key; it is printed as the api sent it.
        const r = v as Record<string, unknown>;
        const human = fields(
          Object.entries(r)
            .filter(([, val]) => val === null || ['string', 'number', 'boolean'].includes(typeof val) || Array.isArray(val))
            .map(([k, val]) => [k, Array.isArray(val) ? val.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))) : (val as string | number | boolean | null)]),
        );
        return { json: v, human, exitCode: v.valid ? Exit.OK : Exit.NOT_VALID };
      }),
    );

  // ---- usage
  program
    .command('usage [keyId]')
    .description('usage counters of a key, or of an app with --app')
    .option('--app <appId>', 'an app\'s verification usage instead of one key\'s')
    .option('--hours <n>', 'verifications per hour over the last n hours (1-168), valid and refused by code')
    .action((keyId: string | undefined, o: { app?: string; hours?: string }, cmd: Command) =>
      authed(cmd, async (c) => {
        if (Boolean(keyId) === Boolean(o.app)) throw new UsageError('give either a keyId or --app <appId>');
        const hours = o.hours === undefined ? undefined : Number(o.hours);
        if (hours !== undefined && !(Number.isInteger(hours) && hours >= 1 && hours <= 168)) throw new UsageError('--hours takes a whole number from 1 to 168');
        if (o.app) {
          const u = await data(c.api.GET('/v1/apps/{appId}/usage', { params: { path: { appId: o.app }, query: { hours } } }));
          const head = fields(
            Object.entries(u.verify as Record<string, unknown>)
              .filter(([, v]) => typeof v !== 'object' || v === null)
              .map(([k, v]) => [`verify.${k}`, v as string | number | null]),
          );
          return { json: u, human: fields([['appId', u.appId], ['freshnessSeconds', u.freshnessSeconds]]) + head + (hours ? hourlyTable(u.hourly) : dailyTable(u.daily)) };
        }
        const u = await data(c.api.GET('/v1/keys/{keyId}/usage', { params: { path: { keyId: keyId! }, query: { hours } } }));
        return {
          json: u,
          human:
            fields([
              ['keyId', u.keyId],
              ['appId', u.appId],
              ['count', u.count],
              ['errors', u.errors],
              ['lastUsedAt', u.lastUsedAt],
              ['lastIp', u.lastIp],
              ['lastSource', u.lastSource],
              ['vault', `${u.vault.count} calls, ${u.vault.errors} errors`],
              ['verify', `${u.verify.count} verifications, ${u.verify.failures} failures`],
              ['freshnessSeconds', u.freshnessSeconds],
            ]) + (hours ? hourlyTable(u.hourly) : dailyTable(u.daily)),
        };
      }),
    );

  // ---- events
  program
    .command('events')
    .description('audit events (latchkey admin actions and Vault audit log), oldest first')
    .option('--app <appId>', 'only this app (an app manager can read its own)')
    .option('--key <keyId>', 'only this key')
    .option('--type <type>', 'only this event type, e.g. key.revoked')
    .option('--path <prefix>', 'only Vault paths under this prefix')
    .addOption(new Option('--source <source>', 'only this source').choices(['vault', 'latchkey']))
    .option('--since <time>', 'RFC 3339 or relative, e.g. 1h, 30m, 7d')
    .option('--until <time>', 'RFC 3339 or relative')
    .option('--limit <n>', 'page size', positiveInt)
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--all', 'follow every page')
    .action((o: { app?: string; key?: string; type?: string; path?: string; source?: 'vault' | 'latchkey'; since?: string; until?: string; limit?: number; cursor?: string; all?: boolean }, cmd: Command) =>
      authed(cmd, async (c) => {
        const items: Schemas['AuditEvent'][] = [];
        let cursor = o.cursor;
        let next: string | null = null;
        do {
          const page = await data(
            c.api.GET('/v1/audit/events', {
              params: { query: { appId: o.app, keyId: o.key, type: o.type, path: o.path, source: o.source, since: o.since, until: o.until, limit: o.limit, cursor } },
            }),
          );
          items.push(...page.items);
          next = page.nextCursor;
          cursor = next ?? undefined;
        } while (o.all && next);
        const more = next ? `(more: --cursor ${next})\n` : '';
        return {
          json: { items, nextCursor: next },
          human: table(['time', 'source', 'type', 'outcome', 'app', 'keyId', 'actor'], items.map((e) => [e.time, e.source, e.type, e.outcome, e.appId, e.keyId, e.actorName ?? e.actor])) + more,
        };
      }),
    );

  return program;
}

/** Hours that had verifications (empty ones are left out), with refusals by code. */
function hourlyTable(hourly: { hour: string; valid: number; refused: number; refusedByCode: Record<string, number> }[] | undefined): string {
  const used = (hourly ?? []).filter((h) => h.valid + h.refused > 0);
  if (!used.length) return '\nno verifications in that period\n';
  const byCode = (h: { refusedByCode: Record<string, number> }) =>
    Object.entries(h.refusedByCode)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
  return '\n' + table(['hour (UTC)', 'valid', 'refused', 'by code'], used.map((h) => [h.hour.slice(0, 13) + ':00', h.valid, h.refused, byCode(h)]));
}

function dailyTable(daily: { date: string; count: number }[]): string {
  return daily.length ? '\n' + table(['date', 'count'], daily.map((d) => [d.date, d.count])) : '';
}


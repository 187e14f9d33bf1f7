import * as fs from 'node:fs';
import { Logger } from '@nestjs/common';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import type { VaultAuthConfig } from '@latchkey/config';
import { VaultTransport } from './vault.transport';
import type { VaultResponse } from './vault.types';

/** latchkey's own Vault identity. */
export abstract class VaultTokenSource {
  /** The token to use now. */
  abstract token(): Promise<string>;
  /** Vault said "permission denied" for our token: it may be expired or replaced. */
  invalidate(): void {}
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): void {}
}

export class StaticTokenSource extends VaultTokenSource {
  constructor(private readonly value: string) {
    super();
  }
  token(): Promise<string> {
    return Promise.resolve(this.value);
  }
}

/**
 * A token file written by Vault Agent's file sink (or any rotator). Re-read
 * when its mtime or size changes; checked at most once a second so the hot
 * path pays one stat() per second, not one per call.
 */
export class FileTokenSource extends VaultTokenSource {
  private cached = '';
  private stamp = '';
  private checkedAt = 0;

  constructor(private readonly path: string) {
    super();
  }

  override async start(): Promise<void> {
    await this.token();
  }

  async token(): Promise<string> {
    const now = Date.now();
    if (this.cached && now - this.checkedAt < 1000) return this.cached;
    this.checkedAt = now;
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(this.path);
    } catch {
      if (this.cached) return this.cached;
      throw new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, `Vault token file ${this.path} cannot be read`);
    }
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (stamp !== this.stamp || !this.cached) {
      const value = (await fs.promises.readFile(this.path, 'utf8')).trim();
      if (!value) throw new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, `Vault token file ${this.path} is empty`);
      this.cached = value;
      this.stamp = stamp;
    }
    return this.cached;
  }

  override invalidate(): void {
    this.checkedAt = 0;
  }
}

/**
 * AppRole login. The token is renewed at two thirds of its TTL; when renewal
 * fails (max TTL reached, token revoked) or Vault answers permission denied,
 * it logs in again.
 */
export class AppRoleTokenSource extends VaultTokenSource {
  private readonly logger = new Logger(AppRoleTokenSource.name);
  private current: { token: string; renewable: boolean; ttl: number } | null = null;
  private inflight: Promise<string> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly transport: VaultTransport,
    private readonly cfg: Extract<VaultAuthConfig, { method: 'approle' }>,
  ) {
    super();
  }

  override async start(): Promise<void> {
    await this.token();
  }

  token(): Promise<string> {
    if (this.current) return Promise.resolve(this.current.token);
    this.inflight ??= this.login().finally(() => (this.inflight = null));
    return this.inflight;
  }

  override invalidate(): void {
    this.current = null;
  }

  override stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private secretId(): string {
    if (this.cfg.secretIdFile) return fs.readFileSync(this.cfg.secretIdFile, 'utf8').trim();
    return this.cfg.secretId ?? '';
  }

  private async login(): Promise<string> {
    const res = await this.transport.request<VaultResponse>({
      method: 'POST',
      path: `auth/${this.cfg.mount}/login`,
      body: { role_id: this.cfg.roleId, secret_id: this.secretId() },
      operation: 'approle login',
    });
    if (!res.auth) throw new LatchkeyError(ErrorCode.VAULT_ERROR, 'AppRole login returned no token');
    this.current = { token: res.auth.client_token, renewable: res.auth.renewable, ttl: res.auth.lease_duration };
    this.logger.log(`logged in with AppRole (accessor ${res.auth.accessor}, ttl ${res.auth.lease_duration}s)`);
    this.schedule(res.auth.lease_duration);
    return res.auth.client_token;
  }

  private schedule(ttlSeconds: number): void {
    this.stop();
    if (!ttlSeconds) return; // non-expiring token
    const delay = Math.max(1000, (ttlSeconds * 1000 * 2) / 3);
    this.timer = setTimeout(() => void this.renewOrRelogin(), delay);
    this.timer.unref();
  }

  private async renewOrRelogin(): Promise<void> {
    const cur = this.current;
    try {
      if (cur?.renewable) {
        const res = await this.transport.request<VaultResponse>({
          method: 'POST',
          path: 'auth/token/renew-self',
          token: cur.token,
          body: {},
          operation: 'token renew-self',
        });
        const ttl = res.auth?.lease_duration ?? 0;
        // Renewal that no longer extends (capped by max TTL) means a fresh login is due.
        if (ttl > Math.max(5, cur.ttl / 10)) {
          this.current = { ...cur, ttl };
          this.schedule(ttl);
          return;
        }
      }
      this.current = null;
      await this.token();
    } catch (err) {
      this.logger.warn(`AppRole token renewal failed, logging in again: ${(err as Error).message}`);
      this.current = null;
      try {
        await this.token();
      } catch (e) {
        this.logger.error(`AppRole login failed: ${(e as Error).message}`);
        this.timer = setTimeout(() => void this.renewOrRelogin(), 5000);
        this.timer.unref();
      }
    }
  }
}

export function createTokenSource(auth: VaultAuthConfig, transport: VaultTransport): VaultTokenSource {
  switch (auth.method) {
    case 'token':
      return new StaticTokenSource(auth.token);
    case 'token_file':
      return new FileTokenSource(auth.path);
    case 'approle':
      return new AppRoleTokenSource(transport, auth);
  }
}

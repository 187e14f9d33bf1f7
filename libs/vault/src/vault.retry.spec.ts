import { backoffMs, retryReason, withVaultRetry } from './vault.retry';

const status = (statusCode: number, errors: string[]) => Object.assign(new Error('x'), { response: { statusCode, body: { errors } } });
const net = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('retryReason: only what Vault certainly did not perform', () => {
  it.each([
    [status(503, ['Vault is sealed']), false, 'sealed'],
    [status(500, ['local node not active but active cluster node not found']), false, 'no_active_node'],
    [net('ECONNREFUSED'), false, 'refused'],
    [status(400, ['Waiting for the primary to upgrade from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service when the primary is finished.']), false, 'kv_upgrading'],
    [net('ECONNRESET'), true, 'reset'],
    [net('ECONNRESET', 'socket hang up'), true, 'reset'],
  ])('retries %p (readOnly %p)', (err, readOnly, reason) => {
    expect(retryReason(err, readOnly)).toBe(reason);
  });

  it.each([
    [status(500, ['internal error']), true],
    [status(503, ['service unavailable']), true],
    [status(400, ['invalid accessor']), true],
    [status(403, ['permission denied']), true],
    [net('ECONNRESET'), false],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), false],
    [net('ETIMEDOUT'), true],
    [net('ECONNABORTED'), true],
  ])('does not retry %p (readOnly %p)', (err, readOnly) => {
    expect(retryReason(err, readOnly)).toBeUndefined();
  });
});

describe('withVaultRetry', () => {
  it('backs off 50, 100, 200… ms, capped at 1 s plus jitter', () => {
    expect(backoffMs(1)).toBeGreaterThanOrEqual(50);
    expect(backoffMs(1)).toBeLessThanOrEqual(60);
    expect(backoffMs(3)).toBeGreaterThanOrEqual(200);
    expect(backoffMs(10)).toBeLessThanOrEqual(1200);
  });

  it('retries a sealed node until it answers, each attempt with what is left of the budget', async () => {
    const budgets: number[] = [];
    let n = 0;
    const res = await withVaultRetry('t', 2000, false, async (remaining) => {
      budgets.push(remaining);
      if (++n < 3) throw status(503, ['Vault is sealed']);
      return 'ok';
    });
    expect(res).toBe('ok');
    expect(budgets).toHaveLength(3);
    expect(budgets[2]).toBeLessThan(budgets[0]);
  });

  it('never retries a write whose connection broke (it may have been performed)', async () => {
    let n = 0;
    await expect(
      withVaultRetry('t', 2000, false, async () => {
        n++;
        throw net('ECONNRESET', 'socket hang up');
      }),
    ).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(n).toBe(1);
  });

  it('stays within the budget and throws the last error', async () => {
    const started = Date.now();
    await expect(
      withVaultRetry('t', 300, false, async () => {
        throw net('ECONNREFUSED');
      }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(Date.now() - started).toBeLessThan(400);
  });
});

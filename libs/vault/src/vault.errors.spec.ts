import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { mapVaultError } from './vault.errors';

const apiError = (statusCode: number, errors: string[]) => Object.assign(new Error(errors[0] ?? ''), { response: { statusCode, body: { errors } } });

describe('mapVaultError', () => {
  it.each([
    [400, ['1 error occurred:\n\t* invalid accessor\n\n'], ErrorCode.VAULT_BAD_REQUEST],
    [403, ['permission denied'], ErrorCode.VAULT_PERMISSION_DENIED],
    [404, [], ErrorCode.VAULT_NOT_FOUND],
    [503, ['Vault is sealed'], ErrorCode.VAULT_SEALED],
    [503, ['service unavailable'], ErrorCode.VAULT_UNAVAILABLE],
    [429, [], ErrorCode.VAULT_UNAVAILABLE],
    [500, ['internal error'], ErrorCode.VAULT_UNAVAILABLE],
    [418, [], ErrorCode.VAULT_ERROR],
  ])('maps HTTP %i to a domain code', (status, errors, code) => {
    const e = mapVaultError(apiError(status, errors), 'token lookup');
    expect(e).toBeInstanceOf(LatchkeyError);
    expect(e.code).toBe(code);
    expect(e.message).toContain('token lookup');
  });

  it('flattens Vault multierror text', () => {
    expect(mapVaultError(apiError(400, ['1 error occurred:\n\t* invalid accessor\n\n']), 'x').message).toBe('Vault x: invalid accessor');
  });

  it.each([
    ['ECONNREFUSED', ErrorCode.VAULT_UNAVAILABLE],
    ['ECONNRESET', ErrorCode.VAULT_UNAVAILABLE],
    ['ECONNABORTED', ErrorCode.VAULT_TIMEOUT],
    ['ETIMEDOUT', ErrorCode.VAULT_TIMEOUT],
  ])('maps network error %s', (code, expected) => {
    const e = mapVaultError(Object.assign(new Error('x'), { code }), 'op');
    expect(e.code).toBe(expected);
    expect(e.retryAfter).toBeGreaterThan(0);
  });

  it('keeps no secret from the request: no cause, token shapes redacted', () => {
    const token = 's.' + 'abcdefghijklmnopqrstuvwx';
    const axiosLike = Object.assign(new Error(`failed with token ${token}`), {
      config: { headers: { 'X-Vault-Token': token }, data: JSON.stringify({ token }) },
    });
    const e = mapVaultError(axiosLike, 'op');
    expect(e.cause).toBeUndefined();
    expect(JSON.stringify({ m: e.message, s: e.stack, d: e.details })).not.toContain(token);
    const fromBody = mapVaultError(apiError(400, [`bad token ${token}`]), 'op');
    expect(fromBody.message).not.toContain(token);
  });
});

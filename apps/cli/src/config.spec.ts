import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, parseEnvFile } from './config';
import { table, UsageError } from './output';

describe('cli configuration', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-cli-cfg-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const devEnv = (text: string) => {
    fs.mkdirSync(path.join(dir, '.latchkey'), { recursive: true });
    fs.writeFileSync(path.join(dir, '.latchkey', 'dev.env'), text);
  };

  it('parses the KEY=VALUE lines npm run dev writes, ignoring anything else', () => {
    expect(parseEnvFile('LATCHKEY_URL=http://127.0.0.1:8080\n# comment\nexport VAULT_TOKEN="s.abc"\nnot a line\nEMPTY=\n')).toEqual({
      LATCHKEY_URL: 'http://127.0.0.1:8080',
      VAULT_TOKEN: 's.abc',
      EMPTY: '',
    });
  });

  it('takes the environment first, then .latchkey/dev.env; a credential pair from the environment is not mixed with the file', () => {
    devEnv('LATCHKEY_URL=http://file:1\nVAULT_TOKEN=file-token\n');
    expect(loadConfig({ needCredential: true }, {}, dir)).toEqual({ url: 'http://file:1', vaultToken: 'file-token', managementKey: undefined });
    expect(loadConfig({ needCredential: true }, { LATCHKEY_URL: 'http://env:2' }, dir)).toMatchObject({ url: 'http://env:2', vaultToken: 'file-token' });
    expect(loadConfig({ needCredential: true }, { LATCHKEY_MANAGEMENT_KEY: 'lk_x' }, dir)).toEqual({ url: 'http://file:1', vaultToken: undefined, managementKey: 'lk_x' });
    expect(loadConfig({ url: 'http://flag:3', needCredential: true }, { LATCHKEY_URL: 'http://env:2', VAULT_TOKEN: 't' }, dir).url).toBe('http://flag:3');
  });

  it('refuses without a URL, with a non-http URL, or without a credential where one is needed; the error names no value', () => {
    expect(() => loadConfig({ needCredential: false }, {}, dir)).toThrow(UsageError);
    expect(() => loadConfig({ needCredential: false }, { LATCHKEY_URL: 'file:///etc/passwd' }, dir)).toThrow(/not an http/);
    expect(() => loadConfig({ needCredential: true }, { LATCHKEY_URL: 'http://x:1' }, dir)).toThrow(/no credential/);
    expect(loadConfig({ needCredential: false }, { LATCHKEY_URL: 'http://x:1' }, dir)).toEqual({ url: 'http://x:1', vaultToken: undefined, managementKey: undefined });
    try {
      loadConfig({ needCredential: true }, { LATCHKEY_URL: 'ftp://user:secret-pass@x' }, dir);
    } catch (err) {
      expect(String(err)).not.toContain('secret-pass');
    }
  });

  it('aligns table columns, marks empty cells with -', () => {
    expect(table(['id', 'name'], [['a', 'x'], ['bbb', null]])).toBe('ID   NAME\na    x\nbbb  -\n');
  });
});

import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot, waitFor } from '@latchkey/devstack';

/** The README's first quick-start command, as a developer runs it (after the build `npm run dev` does first). */
describe('npm run dev', () => {
  it('brings up OpenBao, bootstrap, api and worker, prints a working example, and stops everything on Ctrl-C', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-dev-'));
    const env: NodeJS.ProcessEnv = { ...process.env, LATCHKEY_DEV_BAO_DIR: path.join(dir, 'bao'), LATCHKEY_DEV_ENV_FILE: path.join(dir, 'dev.env') };
    delete env.VAULT_ADDR; // start its own OpenBao, as on a fresh machine
    delete env.VAULT_TOKEN;
    delete env.WORKER_METRICS_PORT; // the dev stack picks one (9464 or a free port), as on a developer's machine
    const dev = spawn(process.execPath, [path.join(projectRoot(), 'dist/scripts/dev.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    dev.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await waitFor('dev stack ready', async () => {
        if (dev.exitCode !== null) throw new Error(`dev exited: ${out}`);
        return /Ready\./.test(out);
      }, 90_000);

      const envFile = Object.fromEntries(
        fs.readFileSync(path.join(dir, 'dev.env'), 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)),
      );
      expect(Object.keys(envFile).sort()).toEqual(['LATCHKEY_URL', 'REDIS_URL', 'VAULT_ADDR', 'VAULT_TOKEN']);
      expect((await fetch(`${envFile.LATCHKEY_URL}/health/ready`)).status).toBe(200);
      // The worker's metrics listener is up where the dev stack says.
      const workerMetrics = out.match(/worker metrics (http:\/\/\S+)/)![1];
      expect(await (await fetch(workerMetrics)).text()).toContain('latchkey_queue_jobs');

      // The printed example works as pasted.
      const verifyLine = out.split('\n').find((l) => l.includes('/v1/keys/verify'))!.trim();
      const { stdout } = await promisify(execFile)('bash', ['-c', verifyLine]);
      expect(JSON.parse(stdout)).toMatchObject({ valid: true, code: 'VALID', appId: 'example' });
      // So does the token exchange line, and the token it prints passes forward auth.
      const tokenLine = out.split('\n').find((l) => l.includes('/oauth2/token'))!.trim();
      const token = JSON.parse((await promisify(execFile)('bash', ['-c', tokenLine])).stdout) as { access_token: string; token_type: string };
      expect(token.token_type).toBe('Bearer');
      expect((await fetch(`${envFile.LATCHKEY_URL}/v1/auth`, { headers: { authorization: `Bearer ${token.access_token}` } })).status).toBe(204);
    } finally {
      dev.kill('SIGINT');
      await new Promise((r) => dev.once('exit', r));
    }
    expect(dev.exitCode).toBe(0);
    // Nothing it started is left running.
    const baoUrl = out.match(/OpenBao dev server on (\S+)/)![1];
    await expect(fetch(`${baoUrl}/v1/sys/health`)).rejects.toThrow();
    const url = out.match(/api (http:\/\/\S+)/)![1];
    await expect(fetch(`${url}/health/live`)).rejects.toThrow();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

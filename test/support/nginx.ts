import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, stopProcess, waitFor, which } from '@latchkey/devstack';

export interface RunningNginx {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * A real nginx (Debian package) on a free loopback port, in a temporary prefix, running `http` (upstreams and
 * the `server` blocks; `listen` is written by the caller from the port it is given). Resolves once `ready`
 * says the configuration answers.
 */
export async function startNginx(http: (port: number) => string, ready: (url: string) => Promise<boolean>, what = 'nginx'): Promise<RunningNginx> {
  const bin = which('nginx') ?? ['/usr/sbin/nginx'].find((p) => fs.existsSync(p));
  if (!bin) throw new Error('nginx is required for this test (apt-get install nginx; .ci/run installs it)');
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-nginx-'));
  const conf = `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${http(port)}
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(bin, ['-e', `${dir}/error.log`, '-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopProcess(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  await waitFor(what, async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    return ready(url).catch(() => false);
  }).catch(async (e) => {
    await stop();
    throw e;
  });
  return { url, port, stop };
}

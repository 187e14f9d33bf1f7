/**
 * `node dist/bench/guards/main.js [checks]`: what the guards' keep-alive agent buys. A bare Fastify server
 * answers POST /v1/keys/verify with a constant verdict (no Vault, no Redis: only the guard's side of the
 * exchange is measured), and LatchkeyVerifier checks against it sequentially and 32 at a time, once with its
 * default keep-alive agent and once with an agent that opens a connection per verify. Prints checks/s and
 * the TCP connections the server accepted. Asserts nothing.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { LatchkeyVerifier } from '../../libs/guards/src';

const verdict = { valid: true, code: 'VALID', keyId: 'AbCdEfGhIjKlMnOpQrStUvWx', appId: 'bench', name: 'hot', policies: ['default'], meta: {}, expiresAt: null, ratelimits: [], credits: null };

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 5000);
  const app = Fastify({ logger: false });
  app.post('/v1/keys/verify', async () => verdict);
  await app.listen({ port: 0, host: '127.0.0.1' });
  let connections = 0;
  app.server.on('connection', () => connections++);
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const input = { headers: { 'x-api-key': 'lk_bench' }, ip: '10.0.0.1' };
  for (const [label, agent] of [
    ['keep-alive (default)', undefined],
    ['connection per verify', new http.Agent({ keepAlive: false, maxSockets: 64 })],
  ] as const) {
    const v = new LatchkeyVerifier({ url, agent });
    for (const concurrency of [1, 32]) {
      for (let i = 0; i < 200; i++) await v.check(input); // warm-up
      connections = 0;
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next++ < total) if (!(await v.check(input)).allowed) throw new Error('refused');
        }),
      );
      const s = (performance.now() - started) / 1000;
      process.stdout.write(`${label.padEnd(22)} concurrency ${String(concurrency).padStart(2)}: ${Math.round(total / s)} checks/s, ${connections} connections for ${total} checks\n`);
    }
    v.close();
    agent?.destroy();
  }
  await app.close();
}

void main();

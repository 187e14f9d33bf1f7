/**
 * The ceilings for bench/verify, run as their own process on the same kind of
 * socket as the api: (a) a bare Fastify GET answering constant JSON, the
 * ceiling for forward auth; (a′) a bare Fastify POST with the verify route's
 * own body and response schemas, answering a constant verdict, the ceiling for
 * POST /v1/keys/verify (Fastify's default JSON body handling, ajv, fast-json-stringify).
 */
import Fastify from 'fastify';
import { verifyBodySchema, verifyResultSchema } from '../../apps/api/src/verify/verify.routes';

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false });
const body = { valid: true, code: 'VALID' };
const verdict = { valid: true, code: 'VALID', keyId: 'AbCdEfGhIjKlMnOpQrStUvWx', appId: 'bench', name: 'hot', policies: ['default'], meta: {}, expiresAt: '2030-01-01T00:00:00.000Z', ratelimits: [], credits: null };
app.get('/', async () => body);
app.post('/verify', { schema: { body: verifyBodySchema, response: { 200: verifyResultSchema } } }, async () => verdict);
app.listen({ port, host: '127.0.0.1' }).then(() => process.stdout.write('ready\n'));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));

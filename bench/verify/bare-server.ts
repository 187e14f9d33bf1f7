/**
 * The ceiling for bench/verify: a bare Fastify route answering a constant
 * JSON body, on the same kind of socket as the api. Run as its own process.
 */
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false });
const body = { valid: true, code: 'VALID' };
app.get('/', async () => body);
app.listen({ port, host: '127.0.0.1' }).then(() => process.stdout.write('ready\n'));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));

import { Logger } from '@nestjs/common';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardFastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthzPath, AuthzService, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError, redactText } from '@latchkey/common';
import { AppConfig } from '@latchkey/config';
import { JobsProducer, QUEUE } from '@latchkey/jobs';
import { decodeKey } from '@latchkey/keys';
import { authenticateCaller, requireBindings } from '../auth/caller.guard';
import { ClientIdentityResolver } from '../auth/client-identity';
import { mapError, sendError } from '../http/error-filter';

/** Where the Bull Board UI (HTML, static assets and its JSON API) is served. */
export const QUEUE_BOARD_PATH = '/admin/queues';

const REALM = 'Basic realm="latchkey queues", charset="UTF-8"';
const READ_METHODS = new Set(['GET', 'HEAD']);

type BoardRoute = Parameters<BullBoardFastifyAdapter['setApiRoutes']>[0][number];

/**
 * Bull Board's Fastify adapter with only its reading routes. Read-only mode on each queue adapter already
 * answers 405 to actions; not registering the action routes at all means no board version or adapter bug can
 * turn a request into a retry, a removal or a pause.
 */
class ReadOnlyBoardAdapter extends BullBoardFastifyAdapter {
  override setApiRoutes(routes: readonly BoardRoute[]): BullBoardFastifyAdapter {
    const reading = routes.filter((r) => (Array.isArray(r.method) ? r.method : [r.method]).every((m) => READ_METHODS.has(m.toUpperCase())));
    return super.setApiRoutes(reading as BoardRoute[]);
  }
}

/**
 * The board's credential: the same ones the JSON view takes (X-Vault-Token, or `Authorization: Bearer` with
 * a management key), or HTTP Basic with the Vault token or management key as the password, so that a browser
 * can open the page (it prompts for Basic natively; latchkey has no sessions and never puts a token in a URL
 * or a cookie). The Basic user name is ignored.
 */
async function boardCaller(authz: AuthzService, config: AppConfig, req: FastifyRequest): Promise<Principal> {
  const auth = req.headers.authorization;
  const basic = typeof auth === 'string' ? /^Basic\s+(\S+)$/i.exec(auth) : null;
  if (!basic) return authenticateCaller(authz, config, req);
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const password = decoded.slice(decoded.indexOf(':') + 1);
  if (decoded.indexOf(':') < 0 || password.length === 0 || password.length > 1024) {
    throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'Basic credentials must carry a Vault token or a management key as the password');
  }
  // The same resolution as the JSON view, as if the password had come in the header it belongs to.
  const headers = decodeKey(password, config.keyPrefix).ok ? { authorization: `Bearer ${password}` } : { 'x-vault-token': password };
  return authenticateCaller(authz, config, { headers } as unknown as FastifyRequest);
}

export interface QueueBoardDeps {
  authz: AuthzService;
  identity: ClientIdentityResolver;
  jobs: JobsProducer;
  config: AppConfig;
}

/**
 * Bull Board over latchkey's queues, read-only, behind the JSON view's check (read on latchkey/audit, with the
 * credential held to its bindings). The queues are those of this Vault cluster's namespace; they are attached
 * on the first authorized request, so the api starts without asking Vault for its cluster id.
 */
export function registerQueueBoard(fastify: FastifyInstance, deps: QueueBoardDeps): void {
  const { authz, identity, jobs, config } = deps;
  const logger = new Logger('QueueBoard');
  const serverAdapter = new ReadOnlyBoardAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  const board = createBullBoard({ queues: [], serverAdapter, options: { uiConfig: { boardTitle: 'latchkey queues' } } });

  let attached: Promise<void> | null = null;
  const attachQueues = (): Promise<void> => {
    attached ??= (async () => {
      const queues = await Promise.all(Object.values(QUEUE).map((name) => jobs.queue(name)));
      board.setQueues(queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true, allowRetries: false })));
    })().catch((err: unknown) => {
      attached = null; // try again on the next request (Vault or Redis may be back)
      throw err;
    });
    return attached;
  };

  void fastify.register(
    async (f) => {
      f.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        try {
          if (!READ_METHODS.has(req.method)) throw new LatchkeyError(ErrorCode.METHOD_NOT_ALLOWED, 'the queue board is read-only');
          const principal = await boardCaller(authz, config, req);
          await requireBindings(principal, identity.of(req));
          await authz.require(principal, AuthzPath.audit, 'read');
          await attachQueues();
          // Pages and queue state are per caller and change by the second: never cached by a browser or proxy.
          void reply.header('Cache-Control', 'no-store');
        } catch (err) {
          const mapped = mapError(err, String(req.id), logger);
          if (mapped.status === 401) void reply.header('WWW-Authenticate', REALM);
          sendError(reply, mapped);
          return reply;
        }
      });
      // Job payloads carry ids only, but failure reasons, stack traces and job logs are free text: every JSON
      // answer of the board passes the central redaction, as the JSON view's failure reasons do.
      f.addHook('onSend', async (_req, reply, payload) => {
        const type = String(reply.getHeader('content-type') ?? '');
        return typeof payload === 'string' && type.startsWith('application/json') ? redactText(payload) : payload;
      });
      await f.register(serverAdapter.registerPlugin());
    },
    { prefix: QUEUE_BOARD_PATH },
  );
}

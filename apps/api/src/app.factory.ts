import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import pino from 'pino';
import { ErrorCode, LatchkeyError, PinoNestLogger, pinoOptions } from '@latchkey/common';
import { AppConfig } from '@latchkey/config';
import { VerifyService } from '@latchkey/verify';
import { AppModule } from './app.module';
import { documentVerifyRoutes, registerVerifyRoutes } from './verify/verify.routes';
import { documentOAuthRoutes, registerOAuthRoutes } from './oauth/oauth.routes';
import { ProfilesService } from '@latchkey/keys';
import { TokenKeyring } from '@latchkey/tokens';
import { AuthzService } from '@latchkey/authz';
import { AdminAuditRecorder } from '@latchkey/audit';
import { ErrorFilter, mapError, sendError } from './http/error-filter';
import { createValidationPipe } from './http/validation';
import { declareFrameworkErrors, ErrorResponse } from './http/api-errors';
import { answerMethodNotAllowed, NotFoundHookedAdapter, sendMethodNotAllowed } from './http/method-not-allowed';
import { ClientIdentityResolver } from './auth/client-identity';
import { registerJsonParser } from './http/json-body';
import { answerClientError, requestTimeoutOptions } from './http/request-timeouts';
import { childLoggerFactory, installAccessLog, requestIdGenerator } from './http/hot-path';
import { forwardedForWarning } from './http/forwarded-for';
import { registerQueueBoard } from './admin/queue-board';
import { registerConsole } from './console/console-assets';
import { JobsProducer } from '@latchkey/jobs';

/** Fastify `trustProxy` from configuration: a hop count or an explicit address list, never `true`. */
function trustProxyOption(config: AppConfig): number | string[] | false {
  const tp = config.http.trustProxy;
  if (!tp) return false;
  return 'hops' in tp ? tp.hops : tp.addresses;
}

/** Build the api application (used by main.ts and by the end-to-end tests). */
export async function createApp(config: AppConfig): Promise<NestFastifyApplication> {
  const log = pino(pinoOptions(config.logLevel, 'latchkey-api'));
  const timeouts = requestTimeoutOptions(config);
  const adapter = new NotFoundHookedAdapter({
    loggerInstance: log,
    bodyLimit: config.http.bodyLimit,
    trustProxy: trustProxyOption(config),
    // Slow clients (a body trickled a byte at a time) get 408 instead of holding a connection forever.
    // Fastify overwrites the server's requestTimeout with its own option after creating it, so both are set.
    requestTimeout: timeouts.requestTimeout,
    http: timeouts,
    clientErrorHandler: answerClientError,
    genReqId: requestIdGenerator(),
    return503OnClosing: true,
    // Hot routes: no per-request child logger, and no per-request line below warn.
    childLoggerFactory: childLoggerFactory(log),
    // Accessors are 24 characters; longer path parameters are answered as "not found" below.
    routerOptions: { maxParamLength: 128 },
    // Schemas of the hot-path routes must reject, not silently fix, bad input.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Errors Fastify raises before routing (bad URL, oversized parameter) get our shape too.
    frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
      const notFound = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      sendError(reply, mapError(notFound ? new LatchkeyError(ErrorCode.NOT_FOUND, 'not found') : err, String(req.id), new Logger('HttpError')));
    },
    forceCloseConnections: 'idle',
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: new PinoNestLogger(log),
    bufferLogs: false,
    // JSON only: Fastify's own JSON parser stays; Nest's urlencoded parser is never added.
    bodyParser: false,
  });

  const fastify = app.getHttpAdapter().getInstance();
  const notAllowed = answerMethodNotAllowed(fastify);
  adapter.beforeNotFound(notAllowed.preHandler);
  if (config.accessLog === 'verify') installAccessLog(fastify, log);
  // Fastify also parses text/plain by default; every endpoint takes JSON, anything else is a 415.
  fastify.removeContentTypeParser('text/plain');
  registerJsonParser(fastify);
  // X-Forwarded-For without a trusted proxy is watched for in the hook every request already runs.
  const watchForwardedFor = forwardedForWarning(config);
  fastify.addHook(
    'onRequest',
    watchForwardedFor
      ? (req, reply, done) => {
          void reply.header('x-request-id', req.id);
          watchForwardedFor(req);
          done();
        }
      : (req, reply, done) => {
          void reply.header('x-request-id', req.id);
          done();
        },
  );

  registerVerifyRoutes(fastify, app.get(VerifyService), app.get(ClientIdentityResolver), config.verify.authPermissionsFrom);
  registerOAuthRoutes(fastify, { verifier: app.get(VerifyService), keyring: app.get(TokenKeyring), profiles: app.get(ProfilesService), identity: app.get(ClientIdentityResolver), authz: app.get(AuthzService), audit: app.get(AdminAuditRecorder), config });
  registerQueueBoard(fastify, { authz: app.get(AuthzService), identity: app.get(ClientIdentityResolver), jobs: app.get(JobsProducer), config });
  // The web console: static files calling the public REST API like any client (no server-side session).
  if (!registerConsole(fastify)) log.warn('web console not built (dist/console missing): /console answers 404; run npm run build');
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(
    new ErrorFilter((req, reply) => {
      const allow = notAllowed.allowFor(req);
      if (allow === null) return false;
      sendMethodNotAllowed(req, reply, allow);
      return true;
    }),
  );

  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('latchkey')
      .setDescription('API keys and mTLS client certificates on Vault/OpenBao')
      .setVersion('1')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Vault-Token' }, 'vaultToken')
      // @nestjs/swagger labels bearer schemes `bearerFormat: JWT` unless told otherwise: a management key is an opaque latchkey key.
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'latchkey key (lk_…)', description: 'a latchkey management key' }, 'managementKey')
      .build(),
    { extraModels: [ErrorResponse] },
  );
  documentVerifyRoutes(doc);
  documentOAuthRoutes(doc);
  declareFrameworkErrors(doc);
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'openapi.json', yamlDocumentUrl: 'openapi.yaml' });
  return app;
}

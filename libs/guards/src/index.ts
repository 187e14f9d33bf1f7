// The core and the Fastify and Express adapters load no framework at run time (type imports only). The NestJS
// guard is its own entry point (`@latchkey/guards/nest`): its decorators need @nestjs/common and @nestjs/core
// loaded, which an Express or Fastify service should not have to install.
export * from './core';
export * from './fastify';
export * from './express';

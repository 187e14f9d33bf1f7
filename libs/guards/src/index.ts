export * from './core';
export * from './fastify';
export * from './express';
export * from './nest';

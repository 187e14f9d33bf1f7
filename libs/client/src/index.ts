export { LatchkeyClient, createLatchkeyApi } from './client';
export type { KeyResponse, LatchkeyApi, LatchkeyClientOptions, Schemas, VerifyRequest, VerifyResponse } from './client';
export { LatchkeyApiError, apiErrorFrom } from './errors';
export { retrying503, retryAfterMs } from './retry';
export type { FetchFn, RetryOptions } from './retry';
export type { components, operations, paths } from './schema';

import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ConflictError, PawledgerError, ValidationError, type ErrorCode } from '../errors.js';
import { validationBody } from './validation.js';

/** ApiErrorCode is the `code` of an error response: the ledger's own codes plus those only the HTTP layer raises. */
export type ApiErrorCode =
  | ErrorCode
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'BAD_REQUEST'
  | 'RATE_LIMITED'
  | 'REQUEST_TIMEOUT'
  | 'INTERNAL';

/** RateLimitedError is what the rate limiter throws for a client over its limit; the limiter has set Retry-After. */
export class RateLimitedError extends Error {
  readonly statusCode = 429;
  constructor(
    readonly max: number,
    readonly retryAfterSeconds: number,
  ) {
    super(`too many requests: at most ${max} a minute from one client; retry in ${retryAfterSeconds} s`);
  }
}

/** ApiError is the body of every error response. It never holds a stack trace. */
export interface ApiError {
  error: { code: ApiErrorCode; message: string; field?: string; hint?: string };
}

/** RETRY_AFTER_SECONDS is the Retry-After sent with 503s: a tier that is down or a lock held by a restart. */
export const RETRY_AFTER_SECONDS = 5;

const STATUS: Record<ErrorCode, number> = {
  VALIDATION: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNAVAILABLE: 503,
  LOCKED: 503,
  INTEGRITY: 500,
  CONFIG: 500,
  DEGRADED: 503,
};

/** apiError builds an error response body; an undefined field or hint is left out. */
export function apiError(code: ApiErrorCode, message: string, extra: { field?: string; hint?: string } = {}): ApiError {
  const error: ApiError['error'] = { code, message };
  if (extra.field !== undefined) error.field = extra.field;
  if (extra.hint !== undefined) error.hint = extra.hint;
  return { error };
}

function fromPawledger(err: PawledgerError): { status: number; body: ApiError } {
  const field = err instanceof ValidationError || err instanceof ConflictError ? err.field : undefined;
  // Every PawledgerError message is written for an operator (errors.ts), so INTEGRITY and CONFIG go out as they are.
  return { status: STATUS[err.code], body: apiError(err.code, err.message, { field, hint: err.hint }) };
}

// Fastify's own request errors carry its wording and FST_ codes; clients get ours, so `code` means the same everywhere.
function fromFastify(err: FastifyError, request: FastifyRequest): { status: number; body: ApiError } | null {
  // A route schema refused the input: name the field, in the project's words (validation.ts).
  if (err.validation) return { status: 400, body: validationBody(err.validation, err.validationContext) };
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, body: apiError('VALIDATION', 'the body is not valid JSON', { field: 'body' }) };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return {
        status: 400,
        body: apiError('VALIDATION', 'the body is empty but Content-Type says application/json', { field: 'body' }),
      };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        body: apiError(
          'PAYLOAD_TOO_LARGE',
          `the body is larger than the limit of ${request.routeOptions.bodyLimit} bytes`,
        ),
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        body: apiError('UNSUPPORTED_MEDIA_TYPE', 'send the body as Content-Type: application/json'),
      };
  }
  // Other request errors fastify raises (a bad URL, a short body) are the client's; their messages hold no stack.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, body: apiError('BAD_REQUEST', err.message) };
  }
  return null;
}

/**
 * handleError is the server's one error handler. PawledgerErrors map by code (VALIDATION 400, NOT_FOUND 404,
 * CONFLICT 409, UNAVAILABLE and LOCKED 503 with Retry-After, INTEGRITY and CONFIG 500); schema failures are 400
 * naming the field; fastify's request errors map to 400, 413 or 415; the rate limiter's to 429; anything else is a bug or an unforeseen failure: logged in full, answered with a bare 500.
 */
export function handleError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof PawledgerError) {
    const { status, body } = fromPawledger(err);
    if (status === 503) {
      request.log.warn({ err }, `Request refused for now: ${err.message}`);
      reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    } else if (status >= 500) {
      request.log.error({ err }, `Request failed: ${err.message}`);
    }
    return reply.code(status).send(body);
  }
  if (err instanceof RateLimitedError) return reply.code(429).send(apiError('RATE_LIMITED', err.message));
  const client = fromFastify(err, request);
  if (client) return reply.code(client.status).send(client.body);
  request.log.error({ err }, 'Request failed with an unexpected error');
  return reply.code(500).send(apiError('INTERNAL', 'internal error'));
}

/** handleNotFound answers a request for a route that does not exist, in the same JSON shape as every other error. */
export function handleNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?', 1)[0];
  return reply.code(404).send(apiError('NOT_FOUND', `there is no route ${request.method} ${path}`));
}

/**
 * handleClientError answers what Node refuses before fastify sees a request (a request or its headers that did not
 * arrive in time, headers over Node's size limit, bytes that are not HTTP) in the API's error shape, then closes the
 * connection. Nothing of the request is echoed.
 */
export function handleClientError(err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message]: [number, ApiErrorCode, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', 'the request did not arrive in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'BAD_REQUEST', 'the request headers are too large']
        : [400, 'BAD_REQUEST', 'the request is not valid HTTP'];
  const body = JSON.stringify(apiError(code, message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

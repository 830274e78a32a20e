import { BidderError, errorBody } from './codes.js';

/**
 * The HTTP answer of every route: decided by the stages, written only by the server module. Every
 * error answer is built here from the coded table (codes.ts), never written by hand.
 */
export interface Answer {
  status: number;
  /** Text, or its UTF-8 bytes (a bid response). */
  body: string | Buffer;
  /** Extra headers (content-type is JSON unless body is empty). */
  headers?: Record<string, string>;
}

export const NO_CONTENT: Answer = Object.freeze({ status: 204, body: '' });

export function errorAnswer(err: BidderError): Answer {
  return { status: err.status, body: errorBody(err) };
}

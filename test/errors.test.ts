import { describe, expect, it } from 'vitest';
import { BidderError, errorBody } from '../src/errors/codes.js';

describe('BidderError (a refusal, answered by its code)', () => {
  it('carries no stack frames, leaves the stack limit as it was, and other errors keep their frames', () => {
    const limit = Error.stackTraceLimit;
    const refusal = new BidderError('NOTICE_MALFORMED', 'b');
    expect(Error.stackTraceLimit).toBe(limit);
    expect(refusal.stack?.split('\n')).toEqual(['Error: notice parameters missing or malformed: b']);
    expect(refusal).toBeInstanceOf(Error);
    expect(errorBody(refusal)).toBe('{"error":"NOTICE_MALFORMED","reason":"notice parameters missing or malformed: b"}');
    expect(new Error('a bug').stack!.split('\n').length).toBeGreaterThan(1);
  });
});

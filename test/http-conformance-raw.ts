import { connect } from 'node:net';
import { once } from 'node:events';

export interface RawExchange {
  /** Every byte the server sent, read only after all of `parts` were written (as curl reads). */
  data: string;
  /** How the connection ended: the server's FIN, a reset, or still open at `waitMs`. */
  end: 'eof' | 'reset' | 'open';
}

/**
 * Writes `parts` on one connection in order (waiting `gapMs` between them and for the socket to
 * drain), reading nothing meanwhile, then reads until the server ends the connection or `waitMs`
 * passes. A server that closes while the client still sends resets it, and the client's kernel
 * drops an answer the client had not read yet: a test sees that as `end: 'reset'` and no data.
 */
export async function rawExchange(port: number, parts: (string | Buffer)[], o: { gapMs?: number; waitMs?: number } = {}): Promise<RawExchange> {
  const s = connect(port, '127.0.0.1');
  s.pause();
  let end: RawExchange['end'] = 'open';
  let closed = false;
  const chunks: Buffer[] = [];
  s.on('close', () => (closed = true));
  s.on('error', () => (end = 'reset'));
  s.on('end', () => end === 'open' && (end = 'eof'));
  await once(s, 'connect');
  for (const [i, p] of parts.entries()) {
    if (end !== 'open') break;
    if (i > 0 && o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
    if (!s.write(p)) await new Promise((r) => (s.once('drain', r), s.once('close', r)));
  }
  s.on('data', (d: Buffer) => chunks.push(d));
  s.resume();
  if (!closed) await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, o.waitMs ?? 3000))]);
  s.destroy();
  return { data: Buffer.concat(chunks).toString('latin1'), end };
}

/** The status line and headers of the first final answer in `raw` (after any 100 Continue), names in lower case. */
export function firstHead(raw: string): { status: string; headers: Record<string, string[]> } {
  const [head] = raw.replace(/^(HTTP\/1\.1 100 Continue\r\n\r\n)+/, '').split('\r\n\r\n');
  const [status, ...lines] = head.split('\r\n');
  const headers: Record<string, string[]> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    (headers[l.slice(0, i).trim().toLowerCase()] ??= []).push(l.slice(i + 1).trim());
  }
  return { status, headers };
}

/** How many answers `raw` holds (status lines at the start of a line). */
export const answers = (raw: string): number => (raw.match(/(^|\r\n)HTTP\/1\.1 [2-5]\d\d /g) ?? []).length;

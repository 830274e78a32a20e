import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricSum } from '../src/harness/prometheus.js';
import { startBidder } from './helpers/bidder.js';

/**
 * TLS at start. A key that is not the certificate's (or swapped files, an encrypted key, a file
 * that is no PEM) passed the start checks and failed in uWebSockets.js as "App construction
 * failed", exit 1, after the journal and the notice secret were made; an expired certificate was
 * served without a word, and clients refused it (bids and notices). The served certificate's
 * expiry is now a gauge and, within 14 days, a warning. The automatic publicUrl named 127.0.0.1
 * whatever the listen address, and nothing said when exchanges on other hosts could bid on a
 * bidder whose notice URLs they cannot reach.
 */
const OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
if (!OPENSSL && process.env.CI === 'true') throw new Error('the TLS tests need openssl; .ci/run installs it');
if (!OPENSSL) console.warn('SKIPPED: the TLS tests need openssl');

const banner = (JSON.parse(readFileSync('openrtb/cases/banner-open-auction.json', 'utf8')) as { request: Record<string, unknown> }).request;

describe.skipIf(!OPENSSL)('TLS at start', () => {
  let dir: string;
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  /** An EC key and a self-signed certificate for 127.0.0.1 and 127.0.0.2, valid between two dates (YYYYMMDDhhmmssZ). */
  function certificate(name: string, start: string, end: string): { keyFile: string; certFile: string } {
    const keyFile = file(`${name}.key`);
    const certFile = file(`${name}.crt`);
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile);
    openssl('req', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2', '-out', file(`${name}.csr`));
    // `openssl ca` sets both dates (`req -x509` in OpenSSL 3.0 starts every certificate now).
    openssl('ca', '-batch', '-notext', '-config', file('ca.cnf'), '-selfsign', '-keyfile', keyFile, '-in', file(`${name}.csr`), '-startdate', start, '-enddate', end, '-out', certFile);
    return { keyFile, certFile };
  }
  let current: { keyFile: string; certFile: string };
  let other: { keyFile: string; certFile: string };
  let expired: { keyFile: string; certFile: string };
  let expiring: { keyFile: string; certFile: string };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tls-test-'));
    writeFileSync(file('ca.cnf'), ['[ca]', 'default_ca = x', '[x]', 'database = index.txt', 'new_certs_dir = .', 'serial = serial', 'default_md = sha256', 'policy = p', 'copy_extensions = copy', 'unique_subject = no', '[p]', 'commonName = supplied', ''].join('\n'));
    writeFileSync(file('index.txt'), '');
    writeFileSync(file('serial'), '01\n');
    current = certificate('current', '20200101000000Z', '20460101000000Z');
    other = certificate('other', '20200101000000Z', '20460101000000Z');
    expired = certificate('expired', '20190101000000Z', '20200101000000Z');
    // Nine days after the test clock's start (2026-06-01T12:00Z, test/helpers/bidder.ts).
    expiring = certificate('expiring', '20260101000000Z', '20260610120000Z');
    openssl('pkey', '-in', current.keyFile, '-aes256', '-passout', 'pass:secret', '-out', file('encrypted.key'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('`bidder serve` checks the key and certificate with the other problems, exit 2', () => {
    /** The demo policies with a bad campaign and `tls`, in a folder of their own. */
    function policiesWith(tls: { keyFile: string; certFile: string }): string {
      const policies = mkdtempSync(join(dir, 'policies-'));
      cpSync('policies', policies, { recursive: true });
      const rewrite = (name: string, f: (t: string) => string) => writeFileSync(join(policies, name), f(readFileSync(join(policies, name), 'utf8')));
      rewrite('bidder.yaml', (t) => t.replace('dir: var/events', `dir: ${join(policies, 'events')}`).replace(/journalPath: .*/, `journalPath: ${join(policies, 'ledger')}`) + `tls: { keyFile: ${tls.keyFile}, certFile: ${tls.certFile} }\n`);
      rewrite('campaigns.yaml', (t) => t.replace('maxBidCpmUsd: 25', 'maxBidCpmUsd: "25"'));
      return policies;
    }
    /** `bidder serve` refused: its exit status and message; killed (status null) if it ran 30 s. */
    function refused(policies: string): { status: number | null; stderr: string } {
      if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
      const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--policies', policies, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent'], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
      expect(run.stderr).not.toMatch(/^\s+at /m);
      // Refused before anything was opened (the folder is made by the check): no journal, no notice secret.
      expect(readdirSync(join(policies, 'ledger'))).toEqual([]);
      return { status: run.status, stderr: run.stderr };
    }
    const where = 'bidder.yaml (with flags and environment) /tls';

    it('a key that is not the certificate\'s, and a certificate expired in 2020, listed with a bad campaign', () => {
      const run = refused(policiesWith({ keyFile: other.keyFile, certFile: expired.certFile }));
      expect(run.status).toBe(2);
      expect(run.stderr).toBe(
        [
          'bidder: invalid policies (3 problems):',
          '  - campaigns.yaml: /campaigns/0/maxBidCpmUsd must be number',
          `  - ${where}/keyFile: ${other.keyFile} is not the private key of the certificate in ${expired.certFile} (CN=expired): give the key it was issued for`,
          `  - ${where}/certFile: ${expired.certFile} expired on 2020-01-01T00:00:00.000Z: every client refuses it, bid requests and notices alike; put a renewed certificate (and its key) in place`,
          '',
        ].join('\n'),
      );
    });

    it('an encrypted key, named as such: the bidder takes no passphrase', () => {
      const run = refused(policiesWith({ keyFile: file('encrypted.key'), certFile: current.certFile }));
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(`  - ${where}/keyFile: ${file('encrypted.key')} is an encrypted private key, and the bidder takes no passphrase: write it out decrypted`);
      expect(run.stderr).toMatch(/\(2 problems\)/);
    });

    it('the key and certificate files swapped', () => {
      const run = refused(policiesWith({ keyFile: current.certFile, certFile: current.keyFile }));
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(new RegExp(`/tls/keyFile: ${current.certFile} is not a PEM private key \\(.*\\) \\(keyFile and certFile swapped\\?\\)`));
      expect(run.stderr).toMatch(new RegExp(`/tls/certFile: ${current.keyFile} is not a PEM certificate \\(.*\\) \\(keyFile and certFile swapped\\?\\)`));
      expect(run.stderr).toMatch(/\(3 problems\)/);
    });
  });

  type Line = { level: number; msg: string; [k: string]: unknown };
  function capture() {
    const lines: Line[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
        done();
      },
    });
    return { lines, logger: pino({ level: 'info' }, stream) };
  }
  const WARN = 40;

  describe('the served certificate\'s expiry', () => {
    it('is exported as bidder_tls_certificate_expiry_timestamp_seconds, its validTo', async () => {
      const log = capture();
      const t = await startBidder({ tls: current }, 'policies', { logger: log.logger });
      try {
        const validTo = Date.parse(new X509Certificate(readFileSync(current.certFile)).validTo);
        expect(validTo).toBe(Date.parse('2046-01-01T00:00:00Z'));
        expect(metricSum(await t.bidder.metricsText(), 'bidder_tls_certificate_expiry_timestamp_seconds')).toBe(validTo / 1000);
        expect(log.lines.filter((l) => /TLS certificate/.test(l.msg))).toEqual([]);
      } finally {
        await t.close();
      }
    });

    it('is warned of at start within 14 days (9 days left by the bidder\'s clock)', async () => {
      const log = capture();
      const t = await startBidder({ tls: expiring }, 'policies', { logger: log.logger });
      try {
        expect(metricSum(await t.bidder.metricsText(), 'bidder_tls_certificate_expiry_timestamp_seconds')).toBe(Date.parse('2026-06-10T12:00:00Z') / 1000);
        const warned = log.lines.filter((l) => /TLS certificate/.test(l.msg));
        expect(warned).toHaveLength(1);
        expect(warned[0]).toMatchObject({ level: WARN, certFile: expiring.certFile, validTo: '2026-06-10T12:00:00.000Z', daysLeft: 9 });
        expect(warned[0].msg).toMatch(/expires within 14 days.*restart/);
      } finally {
        await t.close();
      }
    });

    it('reads 0 without TLS', async () => {
      const t = await startBidder();
      try {
        expect(metricSum(await t.bidder.metricsText(), 'bidder_tls_certificate_expiry_timestamp_seconds')).toBe(0);
      } finally {
        await t.close();
      }
    });
  });

  describe('publicUrl', () => {
    /** POST a bid request over https to `url`, trusting `certFile`. */
    function bidOver(url: string, certFile: string): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        const req = request(`${url}/openrtb2/bid`, { method: 'POST', ca: readFileSync(certFile), headers: { 'content-type': 'application/json' } }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end(JSON.stringify(banner));
      });
    }

    it('follows the address listened on: `--host 127.0.0.2` with tls issues notice URLs at https://127.0.0.2:PORT', async () => {
      // They named https://127.0.0.1:PORT, where nothing listened.
      const t = await startBidder({ host: '127.0.0.2', tls: current });
      try {
        expect(t.bidder.url).toBe(`https://127.0.0.2:${t.bidder.port}`);
        const answer = await bidOver(t.bidder.url, current.certFile);
        expect(answer.status).toBe(200);
        const nurl = (JSON.parse(answer.body) as { seatbid: Array<{ bid: Array<{ nurl: string }> }> }).seatbid[0].bid[0].nurl;
        expect(nurl.startsWith(`https://127.0.0.2:${t.bidder.port}/`), nurl).toBe(true);
      } finally {
        await t.close();
      }
    });

    /** The demo policies with the prebid exchange open to all, in a folder of their own. */
    function openPolicies(): string {
      const policies = mkdtempSync(join(dir, 'open-'));
      cpSync('policies', policies, { recursive: true });
      const exchanges = join(policies, 'exchanges.yaml');
      writeFileSync(exchanges, readFileSync(exchanges, 'utf8').replace('  prebid:', '  prebid:\n    openToAll: true'));
      return policies;
    }
    const loopbackWarnings = (lines: Line[]) => lines.filter((l) => /publicUrl names this machine only/.test(l.msg));

    it('on loopback, listening on every address with an exchange open to other hosts: warned at start, naming publicUrl and the exchange', async () => {
      const log = capture();
      const t = await startBidder({ host: '0.0.0.0' }, openPolicies(), { logger: log.logger });
      try {
        const warned = loopbackWarnings(log.lines);
        expect(warned).toHaveLength(1);
        expect(warned[0]).toMatchObject({ level: WARN, publicUrl: `http://127.0.0.1:${t.bidder.port}`, host: '0.0.0.0', exchanges: ['prebid'] });
        expect(warned[0].msg).toMatch(/set publicUrl in bidder\.yaml/);
      } finally {
        await t.close();
      }
    });

    it("not with `npm start`'s settings (every address, the demo exchanges answering loopback clients only), nor listening on loopback, nor with a publicUrl set elsewhere", async () => {
      const open = openPolicies();
      for (const [overrides, policies] of [
        [{ host: '0.0.0.0' }, 'policies'],
        [{ host: '127.0.0.1' }, open],
        [{ host: '0.0.0.0', publicUrl: 'https://bidder.example.com' }, open],
      ] as const) {
        const log = capture();
        const t = await startBidder(overrides, policies, { logger: log.logger });
        await t.close();
        expect(loopbackWarnings(log.lines), JSON.stringify(overrides)).toEqual([]);
        expect(log.lines.some((l) => l.msg === 'bidder listening')).toBe(true);
      }
    });
  });

  it('warns of a certificate past its date too, in a bidder built in-process (`serve` refuses it)', async () => {
    const log = capture();
    const t = await startBidder({ tls: expired }, 'policies', { logger: log.logger });
    try {
      const warned = log.lines.filter((l) => /TLS certificate/.test(l.msg));
      expect(warned).toHaveLength(1);
      expect(warned[0].msg).toMatch(/has expired/);
      expect(warned[0].daysLeft).toBeLessThan(-2000);
    } finally {
      await t.close();
    }
  });
});

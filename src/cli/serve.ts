import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { createBidder, unkeptSecret } from '../bidder.js';
import { runWorkers } from './workers.js';
import { loadPoliciesOffThread, readSettings, PolicyError, type Policies } from '../config/policies.js';
import { secretList, type Settings } from '../config/settings.js';
import { checkEventLogDir } from '../eventlog/eventlog.js';
import { checkJournalDir } from '../ledger/open.js';
import { SecretFileError, storedSecret } from '../crypto/secret.js';
import { selectBackend, type BackendName } from '../model/backend.js';
import { loadModel, ModelLoadError, resolveModelDir } from '../model/store.js';
import { holdHangups, onHangup } from './hangup.js';
import { lastRunRates, ratesFile, RATES_FILE } from '../live/live.js';

function intOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

/**
 * Everything a start can be refused for, checked together so that one run lists every problem: the
 * settings, the folders they name (made where missing, before anything is opened: one that cannot
 * be written is a setting to fix), the TLS files (read by the HTTPS listener only once the ledger
 * is open and the model loaded; not checked with the policies, which report, train and reloads read
 * on hosts that serve nothing): readable, the key the certificate's, the certificate not expired
 * at `nowMs` (tlsProblems), and the model the bidder would start on, loaded as it will be
 * and put away. A bad model, or a --model or models/CURRENT that names no usable version, stops
 * the start instead of leaving a bidder up that can only answer no-bids; createBidder alone still
 * starts without a model (not ready), and a reload keeps the running model when refused.
 * The whole policy set is checked too, on another thread, with `policies` (--workers: every worker
 * starts on the set checked, `checked`) or once anything else failed. Otherwise the campaigns are
 * parsed once, by the bidder (5,000 campaigns: 5-10 s of YAML, which this check doubled), whose
 * PolicyError is then complete: the settings, folders and model passed here.
 * Rejects with the PolicyError, the ModelLoadError, or both in an AggregateError (policies first);
 * with another error only where the configuration has no problem.
 */
async function checkStart(policiesDir: string, overrides: Partial<Settings>, policies: boolean, nowMs: number, sources: Sources = {}): Promise<{ settings: Settings; checked?: Policies }> {
  const { settings, problems, passed, read } = readSettings(policiesDir, overrides);
  // What this host must provide: the folders and files the settings name.
  const hostProblems: string[] = [];
  const checkFolder = (check: () => void) => {
    try {
      check();
    } catch (err) {
      hostProblems.push((err as Error).message);
    }
  };
  if (passed('/eventLog/dir') && passed('/eventLog/enabled') && settings.eventLog.enabled) checkFolder(() => checkEventLogDir(settings.eventLog.dir));
  if (passed('/ledger/journalPath')) checkFolder(() => checkJournalDir(settings.ledger.journalPath));
  let tlsReadable = passed('/tls') && settings.tls.keyFile !== '' && settings.tls.certFile !== '';
  for (const key of ['keyFile', 'certFile'] as const) {
    const file = passed(`/tls/${key}`) ? settings.tls[key] : '';
    const why = file === '' ? null : unreadableFile(file);
    if (why === null) continue;
    hostProblems.push(`${TLS_SETTING}/${key}: ${file} cannot be read (${why})`);
    tlsReadable = false;
  }
  // Both named and readable: what is in them (one named alone is a problem of the settings).
  if (tlsReadable) hostProblems.push(...tlsProblems(settings.tls.keyFile, settings.tls.certFile, nowMs));
  const model = async () => {
    await selectBackend(settings.backend === 'auto' ? undefined : (settings.backend as BackendName));
    (await loadModel(resolveModelDir(settings.modelsDir, settings.modelVersion || undefined))).dispose();
  };
  // Where bidder.yaml cannot be parsed, the models folder is known from --models alone; the version
  // and backend from --model and --backend, or else their defaults (CURRENT's version, auto), so
  // that the model's problems come with the file's in one message, not at the next run.
  const orDefault = (key: 'backend' | 'modelVersion') => passed(`/${key}`) || (!read && overrides[key] === undefined);
  const modelKnown = passed('/modelsDir') && orDefault('backend') && orDefault('modelVersion');
  // Its problems, which include the settings' and the rates' moves from the last run's (a damaged
  // rates file is a problem of its own). The set checked is kept: the workers start on it.
  let checked: Policies | undefined;
  const policyCheck = () =>
    Promise.resolve()
      .then(() => loadPoliciesOffThread(policiesDir, overrides, undefined, passed('/ledger/journalPath') ? lastRunRates(ratesFile(join(settings.ledger.journalPath, RATES_FILE))) : undefined))
      .then(
        (set) => ((checked = set), []),
        (err: unknown) => {
          if (err instanceof PolicyError) return err.problems;
          throw err;
        },
      );
  let [policySet, loaded] = await Promise.allSettled([policies ? policyCheck() : null, modelKnown ? model() : null]);
  if (!policies && (problems.length > 0 || hostProblems.length > 0 || loaded.status === 'rejected')) [policySet] = await Promise.allSettled([policyCheck()]);
  const refusals: Error[] = [];
  const failures: unknown[] = [];
  const policyProblems = [...((policySet.status === 'fulfilled' && policySet.value) || problems), ...hostProblems].map((p) => blamed(p, sources));
  if (policyProblems.length > 0) refusals.push(new PolicyError(policyProblems));
  if (policySet.status === 'rejected') failures.push(policySet.reason);
  if (loaded.status === 'rejected') (loaded.reason instanceof ModelLoadError ? refusals : failures).push(loaded.reason);
  // A failure of this host (a backend that cannot load, a thread that died) is reported where the
  // configuration has no problem: those are what to fix first.
  if (refusals.length > 0) throw refusals.length === 1 ? refusals[0] : new AggregateError(refusals);
  if (failures.length > 0) throw failures[0];
  return { settings, checked };
}

const TLS_SETTING = 'bidder.yaml (with flags and environment) /tls';

/** The flag or environment variable that set a setting (a JSON pointer: `/port`), as said in a problem: `--port 70000`, `PORT=abc`. */
type Sources = Record<string, string>;

const SETTINGS_FILE = 'bidder.yaml (with flags and environment)';

/**
 * A problem of the settings about a value a flag or the environment set, said as theirs
 * (`PORT=abc: /port must be integer`) rather than bidder.yaml's, which may not name it at all.
 */
function blamed(problem: string, sources: Sources): string {
  if (!problem.startsWith(SETTINGS_FILE)) return problem;
  const rest = problem.slice(SETTINGS_FILE.length);
  const path = /^:? (\/[^\s:]*)/.exec(rest)?.[1];
  if (path === undefined) return problem;
  const source = Object.entries(sources).find(([p]) => path === p || path.startsWith(`${p}/`))?.[1];
  return source === undefined ? problem : source + rest;
}

/** How a value is named in a problem: as given where short and plain, by its name alone where it is a secret or a URL (a password in it). */
function sourceOf(name: string, value: string | number, secret = false): string {
  const env = /^[A-Z_]+$/.test(name);
  if (secret) return env ? `${name} (environment)` : name;
  const v = /^[\w.:@+\/-]{0,64}$/.test(String(value)) ? String(value) : JSON.stringify(String(value).slice(0, 64));
  return env ? `${name}=${v}` : `${name} ${v}`;
}

/**
 * What the HTTPS listener would fail on, or serve and have refused, with these files. uWebSockets.js
 * takes them only once the journal and the notice secret are made, and says of a key that is not
 * the certificate's, an encrypted key or a file that is no PEM only "App construction failed"
 * (exit 1); and it serves an expired certificate, which every client refuses: bid requests, and
 * the notices, whose URLs name this listener (wins billed, never recorded). The certificate is the
 * first in `certFile` (the server's own; a chain follows it); the key must be unencrypted PEM,
 * as the listener takes no passphrase.
 */
function tlsProblems(keyFile: string, certFile: string, nowMs: number): string[] {
  const problems: string[] = [];
  const keyPem = readFileSync(keyFile, 'utf8');
  const certPem = readFileSync(certFile, 'utf8');
  const holdsCertificate = (pem: string) => pem.includes('-----BEGIN CERTIFICATE-----');
  const holdsKey = (pem: string) => / PRIVATE KEY-----/.test(pem);
  const swapped = holdsCertificate(keyPem) && holdsKey(certPem) ? ' (keyFile and certFile swapped?)' : '';
  let key: KeyObject | undefined;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyPem)) {
    problems.push(`${TLS_SETTING}/keyFile: ${keyFile} is an encrypted private key, and the bidder takes no passphrase: write it out decrypted (openssl pkey -in ${keyFile} -out KEY.pem) to a file only the bidder's user can read`);
  } else {
    try {
      key = createPrivateKey(keyPem);
    } catch (err) {
      problems.push(`${TLS_SETTING}/keyFile: ${keyFile} is not a PEM private key (${(err as Error).message})${swapped}`);
    }
  }
  let cert: X509Certificate | undefined;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    problems.push(`${TLS_SETTING}/certFile: ${certFile} is not a PEM certificate (${(err as Error).message})${swapped}`);
  }
  if (cert === undefined) return problems;
  if (key !== undefined && !cert.checkPrivateKey(key)) {
    problems.push(`${TLS_SETTING}/keyFile: ${keyFile} is not the private key of the certificate in ${certFile} (${cert.subject.replace(/\n/g, ', ')}): give the key it was issued for`);
  }
  const expiresMs = Date.parse(cert.validTo);
  if (expiresMs <= nowMs) {
    problems.push(`${TLS_SETTING}/certFile: ${certFile} expired on ${new Date(expiresMs).toISOString()}: every client refuses it, bid requests and notices alike; put a renewed certificate (and its key) in place`);
  }
  return problems;
}

/** Why `file` cannot be read (the error's code, or 'not a file'), or null. */
function unreadableFile(file: string): string | null {
  try {
    accessSync(file, constants.R_OK);
    return statSync(file).isFile() ? null : 'not a file';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

/**
 * Worker threads share their ports (SO_REUSEPORT), so any process that also set it could join
 * them: before they bind, the ports are bound once without it, which fails while another bidder
 * (workers or not) listens there. A single process binds exclusively anyway; checked here, before
 * it opens anything.
 */
async function portsFree(s: Settings): Promise<void> {
  for (const [host, port, what] of [[s.host, s.port, 'port'], [s.opsHost, s.opsPort, 'opsPort']] as const) {
    if (port === 0) continue;
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${host}:${port} (${what}): ${err.code === 'EADDRINUSE' ? 'another process listens there' : err.message}`)));
      probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
    });
  }
}

/**
 * The secret every worker signs notices and keys users with where none is configured: the one a
 * single process keeps in the journal folder (`notice-secret`, src/bidder.ts), generated at the
 * first start. With one drawn per start, a restart refused the notices of the bids before it and
 * every user was new (caps and profiles, freqcaps.json included, lost); and `serve` alone and
 * `serve --workers` used different ones on the same folder. One that cannot be kept stops the
 * start, as a single process's does (unkeptSecret).
 */
function workersSecret(journalPath: string): string {
  const file = join(journalPath, 'notice-secret');
  let kept: ReturnType<typeof storedSecret>;
  try {
    kept = storedSecret(file);
  } catch (err) {
    // A kept one that is damaged or unreadable stops the start; it is never replaced.
    if (err instanceof SecretFileError) throw err;
    throw unkeptSecret(file, err);
  }
  const { secret, created, warning } = kept;
  if (warning !== undefined) process.stderr.write(`bidder: ${warning}\n`);
  process.stderr.write(
    `bidder: no noticeSecret configured: the workers sign notices and key users with the secret ${created ? 'generated now and ' : ''}kept in ${file}; other processes of a fleet refuse their notices and key users otherwise (caps and profiles are not shared): set the same NOTICE_SECRET on every process\n`,
  );
  return secret;
}

/** Bad policies, a bad model, or both: one message with every problem, exit 2; anything else, exit 1. */
/** A signal taken as by default (the process ends by it): its handler removed, raised again. */
function endBySignal(signal: NodeJS.Signals): void {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}

function refuseToStart(err: unknown): never {
  const refusals = err instanceof AggregateError ? (err.errors as unknown[]) : [err];
  if (refusals.every((e) => e instanceof PolicyError || e instanceof ModelLoadError)) {
    process.stderr.write(refusals.map((e) => `bidder: ${e.message}\n`).join(''));
    process.exit(2);
  }
  process.stderr.write(`bidder: cannot start: ${(err as Error).message}\n`);
  process.exit(1);
}

/** `code`, or the exit code an uncaught error set meanwhile (the capture's 1), whichever is higher. */
const exitCode = (code: number): number => Math.max(code, Number(process.exitCode ?? 0) || 0);

// Said, not dropped: whoever sent it (systemctl reload) learns that no reload ran.
const hangupWhileStopping = () => process.stderr.write('bidder: SIGHUP while stopping: ignored; no reload is begun once a SIGTERM or SIGINT has been received\n');

/**
 * `bidder serve`: run the bidder until SIGTERM/SIGINT, then drain and exit 0. SIGHUP reloads the
 * policies as the admin route does (on every worker with --workers); left to Node's default, it
 * ended the process undrained, its frequency caps and learned state unwritten.
 */
export function registerServe(program: Command): void {
  program
    .command('serve', { isDefault: true })
    .description('serve OpenRTB bid requests and notices over HTTP')
    .option('--policies <dir>', 'policy directory (campaigns, exchanges, currency, bidder settings)', 'policies')
    .option('--port <n>', 'TCP port (env PORT; 0 picks a free one)', intOption('--port'))
    .option('--host <addr>', 'address to listen on')
    .option('--backend <name>', 'TensorFlow.js backend: auto, tensorflow, webgpu, wasm or cpu (auto never picks webgpu)')
    .option('--models <dir>', 'models folder')
    .option('--model <version>', 'model version (default: the one named in <models>/CURRENT)')
    .option('--redis <url>', 'Redis URL for a fleet-shared ledger (env REDIS_URL)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--workers <n>', 'bidders on worker threads sharing the port (needs a Redis ledger: --redis, REDIS_URL or ledger.redisUrl; budgets are shared through it)', intOption('--workers'), 1)
    .action(async (o: Record<string, string | number | undefined>) => {
      // Until serving, a SIGHUP is ignored with a line, as while the CLI loaded (already held where src/cli.ts ran).
      holdHangups();
      const overrides: Partial<Settings> = {};
      // Which flag or variable set each value: a problem with it is said as theirs (blamed).
      const sources: Sources = {};
      // PORT= (set empty, as compose files and unit files leave it) is unset, not port 0 (a random port nobody sends to).
      const port = o.port ?? (process.env.PORT?.trim() ? Number(process.env.PORT) : undefined);
      if (port !== undefined) {
        overrides.port = port as number;
        sources['/port'] = o.port !== undefined ? sourceOf('--port', o.port) : sourceOf('PORT', process.env.PORT!);
      }
      if (o.host) (overrides.host = o.host as string), (sources['/host'] = sourceOf('--host', o.host));
      if (o.backend) (overrides.backend = o.backend as Settings['backend']), (sources['/backend'] = sourceOf('--backend', o.backend));
      if (o.models) (overrides.modelsDir = o.models as string), (sources['/modelsDir'] = sourceOf('--models', o.models));
      if (o.model) (overrides.modelVersion = o.model as string), (sources['/modelVersion'] = sourceOf('--model', o.model));
      const redis = (o.redis as string | undefined) ?? process.env.REDIS_URL;
      if (redis) {
        overrides.ledger = { redisUrl: redis } as Settings['ledger'];
        sources['/ledger/redisUrl'] = sourceOf(o.redis !== undefined ? '--redis' : 'REDIS_URL', redis, true);
      }
      const level = (o.logLevel as string | undefined) ?? process.env.LOG_LEVEL;
      if (level) (overrides.logLevel = level as Settings['logLevel']), (sources['/logLevel'] = sourceOf(o.logLevel !== undefined ? '--log-level' : 'LOG_LEVEL', level));
      // The environment over bidder.yaml, as for every other setting: with bidder.yaml first, a
      // process started with a fleet's NOTICE_SECRET signed with another key, and the fleet refused
      // its notices (403: billed, never recorded).
      if (process.env.NOTICE_SECRET) (overrides.noticeSecret = process.env.NOTICE_SECRET), (sources['/noticeSecret'] = sourceOf('NOTICE_SECRET', '', true));
      // Verify-only keys of a rotation (docs/money.md, "Rotating the notice secret"), comma-separated.
      if (process.env.NOTICE_SECRET_PREVIOUS) (overrides.noticeSecretPrevious = secretList(process.env.NOTICE_SECRET_PREVIOUS)), (sources['/noticeSecretPrevious'] = sourceOf('NOTICE_SECRET_PREVIOUS', '', true));
      if (process.env.ADMIN_TOKEN) (overrides.adminToken = process.env.ADMIN_TOKEN), (sources['/adminToken'] = sourceOf('ADMIN_TOKEN', '', true));
      const workers = o.workers as number;
      let settings: Settings;
      let checked: Policies | undefined;
      try {
        ({ settings, checked } = await checkStart(o.policies as string, overrides, workers > 1, Date.now(), sources));
      } catch (err) {
        refuseToStart(err);
      }
      // The settings loaded, not the flag alone: a bidder.yaml naming ledger.redisUrl was refused.
      if (workers > 1 && !settings.ledger.redisUrl) {
        process.stderr.write('bidder: --workers needs a shared ledger: start Redis and set ledger.redisUrl in bidder.yaml, pass --redis redis://127.0.0.1:6379 or set REDIS_URL\n');
        process.exit(2);
      }
      // Before anything is opened: found by the listener, a port in use stopped a single process
      // only once its journal (and lock) and notice secret were made and the model loaded.
      await portsFree(settings).catch((err: Error) => {
        process.stderr.write(`bidder: cannot start${workers > 1 ? ' workers' : ''}: ${err.message}\n`);
        process.exit(1);
      });
      if (workers > 1) {
        // The port checked is the one bound: bidder.yaml's where no flag or PORT gives one.
        overrides.port = settings.port;
        // Every worker signs with one key: bidder.yaml's where the environment gives none, else the kept one.
        let noticeSecret: string;
        try {
          noticeSecret = settings.noticeSecret || workersSecret(settings.ledger.journalPath);
        } catch (err) {
          refuseToStart(err);
        }
        // The signals' handlers are in place before the start: installed after it, a SIGTERM that came
        // as the start ended (just after "workers listening") found none and ended the process at
        // once, its workers unstopped (test serve-workers-redis-setting: exit by SIGTERM, twice in
        // CI). Until the workers listen, a signal still ends the process as it did.
        let running: Awaited<ReturnType<typeof runWorkers>> | undefined;
        let stopping = false;
        const stopWorkers = (signal: NodeJS.Signals) => {
          if (running === undefined) return endBySignal(signal);
          if (stopping) return;
          stopping = true;
          // A worker whose shutdown failed or was cut short is named, and the exit says so.
          running.stop().then(
            () => process.exit(exitCode(0)),
            (err: Error) => {
              process.stderr.write(`bidder: stopped with errors: ${err.message}\n`);
              process.exit(1);
            },
          );
        };
        process.on('SIGTERM', stopWorkers);
        process.on('SIGINT', stopWorkers);
        const started = await runWorkers(workers, o.policies as string, checked!, { ...overrides, noticeSecret }, (m) => process.stderr.write(`bidder: ${m}\n`)).catch((err: Error) => {
          process.stderr.write(`bidder: cannot start workers: ${err.message}\n`);
          process.exit(1);
        });
        running = started;
        onHangup(() => (stopping ? hangupWhileStopping() : started.reloadPolicies('SIGHUP')));
        // A bug in the main thread (metrics collection, the admin lock, a worker's bookkeeping):
        // its stack said, the workers stopped as on SIGTERM (their state written), exit 1. Before,
        // the process ended at once with the workers' state since their last save lost.
        process.setUncaughtExceptionCaptureCallback((err: unknown) => {
          process.stderr.write(`bidder: unhandled error in the main thread: the workers stop: ${err instanceof Error ? err.stack : String(err)}\n`);
          process.exitCode = 1;
          stopWorkers('SIGTERM');
        });
        return;
      }
      // As with workers: the handlers are in place before the start, which logs 'bidder listening'
      // as it ends; until then a signal ends the process as it did.
      let stopping = false;
      let started: Awaited<ReturnType<typeof createBidder>> | undefined;
      const onSignal = (signal: NodeJS.Signals) => (started === undefined ? endBySignal(signal) : stop(signal));
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      let bidder: Awaited<ReturnType<typeof createBidder>>;
      try {
        bidder = await createBidder({ policiesDir: o.policies as string, overrides });
      } catch (err) {
        refuseToStart(err);
      }
      started = bidder;
      // The model passed checkStart a moment ago: only a file changed since leaves it unloaded.
      if (!bidder.ready()) bidder.logger.error('no model could be loaded: /readyz answers 503 and every bid request gets a no-bid until one is');
      // A reload begun before SIGTERM finishes and is logged: close() waits for the admin actions.
      onHangup(() => (stopping ? hangupWhileStopping() : void bidder.reloadPoliciesOnSignal('SIGHUP')));
      const stop = (signal: string, code = 0) => {
        if (stopping) return;
        stopping = true;
        bidder.logger.info({ signal }, 'draining in-flight requests');
        bidder.close().then(
          // An uncaught error during the drain set exit code 1 and found stop() under way: kept.
          () => process.exit(exitCode(code)),
          (err) => {
            bidder.logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      // A bug outside a request handler: logged with its stack, then the drain of a SIGTERM (its
      // state written, in-flight requests answered) and exit 1. Before, Node printed the stack on
      // stderr and ended at once (exit 7 with the wasm backend), the state since its last save lost.
      // A capture, as in src/worker.ts: the wasm runtime's own listener throws the error again.
      process.setUncaughtExceptionCaptureCallback((err: unknown) => {
        bidder.logger.error({ err }, 'unhandled error outside a request handler: the bidder stops');
        process.exitCode = 1;
        stop('uncaught error', 1);
      });
    });
}

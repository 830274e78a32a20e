import type { Logger } from 'pino';
import type { Campaign, Ledger, Shader } from '../types.js';
import type { ExchangeSettings } from '../config/policies.js';
import type { EventLog } from '../eventlog/eventlog.js';
import type { ProfileStore } from '../features/profiles.js';
import type { FrequencyStore } from '../freqcap/index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ThompsonPacer } from '../pace/pacer.js';
import type { IssuedBids } from './issued.js';
import type { Signer } from './sign.js';

/** What the notice handler is built from (src/notices/notices.ts); each part of it takes the fields it uses. */
export interface NoticeDeps {
  signer: Signer;
  /** Key for click tokens handed to advertisers (conversion postbacks). */
  secret: string;
  /**
   * Secrets `secret` replaced (settings.noticeSecretPrevious): a conversion token minted with one
   * still counts; tokens are minted with `secret` alone. (The signer takes them for the notices.)
   */
  previousSecrets?: readonly string[];
  ledger: Ledger;
  /** Told each win and click with the CTR model that priced its bid, where known (`modelOfBid`). */
  pacer: Pick<ThompsonPacer, 'onWin' | 'onLoss' | 'onClick' | 'onConversion'>;
  /**
   * The version of the CTR model serving when the bid whose notices expire at `expiresAtMs` was
   * made (its issue time is that less the notice TTL: Live.modelAt), for a bid the issued ring no
   * longer remembers or never did (past its TTL, another worker's, before a restart); undefined
   * where not known, and the notice counts under the model serving. Absent: always not known.
   */
  modelOfBid?: (expiresAtMs: number) => string | undefined;
  shader: Shader | null;
  profiles: ProfileStore;
  frequency: FrequencyStore;
  issued: IssuedBids;
  eventLog: EventLog;
  metrics: Metrics;
  campaigns: () => ReadonlyMap<string, Campaign>;
  /** Where a click on this creative goes: serving now, or removed by a recent reload. */
  landingUrl: (campaignId: string, creativeId: string) => string | undefined;
  ratesPerUsd: () => ReadonlyMap<string, number>;
  clock: () => number;
  /** Monotonic milliseconds, for the ledger calls' latency. */
  now: () => number;
  /** Longest a click stays eligible for a conversion postback. */
  conversionWindowMs: number;
  /**
   * The ledger's `retentionMs` (BudgetLedger): this long past its bid's notice expiry the ledger
   * still tells whether the ad ran, and a click heard until then is counted if it did (a page left
   * open, then clicked). Absent, 0: a click counts only within its expiry.
   */
  ledgerRetentionMs?: number;
  /** The exchange's settings as they stand (a bid's silence is read by its exchange's `lossNotices`). */
  exchange: (name: string) => ExchangeSettings | undefined;
  /**
   * The other bidders of this process (worker threads sharing its port: a bid's notices reach any
   * of them). A notice for a bid this bidder does not remember is told to them, so the one that bid
   * knows it was heard (its silence is then a loss on an exchange without loss notices) and its
   * shader learns the outcome (only the bidder that bid knows the bid's segment). In a fleet, the
   * other processes too (src/fleet/peers.ts): a load balancer sends a notice to any of them.
   */
  peers?: NoticePeers;
  logger: Pick<Logger, 'warn'>;
}

/** See `NoticeDeps.peers`. `won` and `mtwUsd` where the notice teaches the shader (a win, a loss on price). */
export interface NoticePeers {
  tell(bidId: string, won?: boolean, mtwUsd?: number): void;
  /** The process's workers share one: what they tell each other already, the fleet's peers do not apply again. */
  readonly group?: string;
  /** Called as the handler closes: what was told this turn still goes out. */
  close?(): void;
}

/**
 * The feature pipeline shared by serving and training. One builder turns (impression context,
 * prepared creative, user profile) into one row of hashed sparse ids and one row of dense floats,
 * written into caller-owned typed arrays so the bid path allocates nothing per row.
 *
 * Sparse ids live in one shared hash space [0, hashBuckets); id 0 is the 'absent' value of every
 * field (missing data, and all user-level fields when user data may not be used). Each field has
 * its own hash seed, so equal strings in different fields land in different buckets. Its weight is
 * learnt from the fields training rows lack; where a request lacks a field every training row had
 * (the simulator always sends site.cat, device.os, the geo), an LR scores that field's average
 * instead (src/model/unseen.ts).
 */
import { createHash } from 'node:crypto';
import type { Campaign, Creative, ImpContext, UserProfile } from '../types.js';

/** Sparse fields in row order. Changing this list changes the spec hash (old models are refused). */
export const SPARSE_FIELDS = [
  'exchange',
  'siteOrApp',
  'publisher',
  'domain',
  'category',
  'categoryTop',
  'deviceType',
  'os',
  'country',
  'region',
  'size',
  'format',
  'hour',
  'deal',
  'creative',
  'campaign',
  'adCategory',
  'segment0',
  'segment1',
  'segment2',
  'segment3',
  // Crosses of the effects that are products of two sides (src/sim/market.ts has such a truth, as
  // real CTRs do): a wide weight per cross gives the models them directly instead of hoping the
  // cross layers find them from rank-limited embeddings.
  'hourDevice',
  'segmentAd0',
  'segmentAd1',
  'segmentAd2',
  'segmentAd3',
  'pageCreative',
  'deviceCreative',
] as const;

export type SparseField = (typeof SPARSE_FIELDS)[number];

/** Fields that carry user-level data: written as absent (0) when `ctx.userDataAllowed` is false. */
export const USER_SPARSE_FIELDS: readonly SparseField[] = ['segment0', 'segment1', 'segment2', 'segment3', 'segmentAd0', 'segmentAd1', 'segmentAd2', 'segmentAd3'];

/** User behaviour dense features, in order. */
export const USER_DENSE_FEATURES = [
  'profileKnown',
  'seenCategoryOverlap',
  'clickedCategoryOverlap',
  'campaignFrequency',
  'seenCount',
] as const;

export interface FeatureSpec {
  readonly name: string;
  readonly sparseFields: number;
  readonly sparseFieldNames: readonly string[];
  readonly hashBuckets: number;
  readonly textDim: number;
  readonly imageDim: 8;
  readonly segmentSlots: number;
  /** Offsets of each dense block inside a dense row. */
  readonly denseLayout: {
    readonly text: number;
    readonly image: number;
    readonly user: number;
    readonly bias: number;
  };
  readonly denseDim: number;
  readonly hashAlgorithm: string;
  /** sha256 over the JSON of every field above; a model built for another hash is refused. */
  readonly hash: string;
}

export interface FeatureSpecOptions {
  hashBuckets?: number;
  textDim?: number;
}

const IMAGE_DIM = 8 as const;
const SEGMENT_SLOTS = 4;
const SEGMENT_OFFSET = SPARSE_FIELDS.indexOf('segment0');
const HOUR_DEVICE = SPARSE_FIELDS.indexOf('hourDevice');
const SEGMENT_AD_OFFSET = SPARSE_FIELDS.indexOf('segmentAd0');
const PAGE_CREATIVE = SPARSE_FIELDS.indexOf('pageCreative');
const DEVICE_CREATIVE = SPARSE_FIELDS.indexOf('deviceCreative');

export function makeFeatureSpec(opts: FeatureSpecOptions = {}): FeatureSpec {
  const hashBuckets = opts.hashBuckets ?? 1 << 16;
  const textDim = opts.textDim ?? 16;
  if (!Number.isInteger(hashBuckets) || hashBuckets < 2) throw new Error(`hashBuckets must be an integer >= 2, got ${hashBuckets}`);
  if (!Number.isInteger(textDim) || textDim < 1) throw new Error(`textDim must be a positive integer, got ${textDim}`);
  const text = 0;
  const image = text + textDim;
  const user = image + IMAGE_DIM;
  const bias = user + USER_DENSE_FEATURES.length;
  const body = {
    name: 'features-v2',
    sparseFields: SPARSE_FIELDS.length,
    sparseFieldNames: [...SPARSE_FIELDS],
    hashBuckets,
    textDim,
    imageDim: IMAGE_DIM,
    segmentSlots: SEGMENT_SLOTS,
    denseLayout: { text, image, user, bias },
    denseDim: bias + 1,
    // Changing the hash function or the text tokeniser must change this string.
    hashAlgorithm:
      'fnv1a32-utf16-fmix32;segments=shared-seed;text=word-uni-bi-signed-l2;user=toplevel-cat-overlap;crosses=hour.device,segment.adtops.nseg,pagetop.creative,device.creative',
  };
  const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  return Object.freeze({ ...body, hash });
}

export const FEATURE_SPEC: FeatureSpec = makeFeatureSpec();

/** Sparse fields that depend on the creative only. */
const AD_SPARSE_FIELDS: readonly SparseField[] = ['creative', 'campaign', 'adCategory'];
/** Sparse fields that depend on both the imp (or user) and the creative; writeCreative writes them too. */
const PAIR_SPARSE_FIELDS: readonly SparseField[] = ['segmentAd0', 'segmentAd1', 'segmentAd2', 'segmentAd3', 'pageCreative', 'deviceCreative'];

/**
 * Which inputs of a row depend on the imp only (`ctx`), on the creative only (`ad`), or on both
 * (the rest: the user × creative block), as writeContext and writeCreative write them. With it,
 * compileArtifacts computes the model's first linear layer in these parts (src/model/compile.ts,
 * which says why serving does not); it checks the values before reusing a part, so this list
 * decides speed, not scores.
 */
export function rowSplit(spec: FeatureSpec = FEATURE_SPEC) {
  const sparseAd = AD_SPARSE_FIELDS.map((f) => SPARSE_FIELDS.indexOf(f));
  const sparsePair = PAIR_SPARSE_FIELDS.map((f) => SPARSE_FIELDS.indexOf(f));
  const { text, image, user, bias } = spec.denseLayout;
  const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  return {
    sparse: { ctx: range(0, spec.sparseFields).filter((f) => !sparseAd.includes(f) && !sparsePair.includes(f)), ad: sparseAd },
    dense: {
      ctx: [user + USER_DENSE_FEATURES.indexOf('profileKnown'), user + USER_DENSE_FEATURES.indexOf('seenCount'), bias],
      ad: [...range(text, spec.textDim), ...range(image, spec.imageDim)],
    },
  };
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnvString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

/** FNV-1a over `s` up to its first '-', ASCII-lower-cased: the IAB tier-1 parent, without allocating. */
function fnvTopLevel(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c === 45) break;
    if (c >= 65 && c <= 90) c |= 0x20;
    h ^= c;
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

function fnvInt(h: number, n: number): number {
  for (let k = 0; k < 4; k++) {
    h ^= (n >>> (k * 8)) & 0xff;
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

// FNV-1a mixes its low bits poorly; the murmur3 finaliser spreads them before the modulo.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function fieldSeed(field: string): number {
  return fnvString(FNV_OFFSET, field);
}

/**
 * Whether `cat` is `top` or one of its subcategories ('IAB17-1' under 'iab17'), ignoring ASCII
 * case (the bid path lower-cases categories, catalogs usually do not), without allocating.
 * `top` must be lower-case.
 */
function sameTopLevel(cat: string, top: string): boolean {
  if (cat.length < top.length) return false;
  for (let i = 0; i < top.length; i++) if ((cat.charCodeAt(i) | 0x20) !== top.charCodeAt(i)) return false;
  return cat.length === top.length || cat.charCodeAt(top.length) === 45; /* '-' */
}

function topLevel(cat: string): string {
  const dash = cat.indexOf('-');
  return (dash < 0 ? cat : cat.slice(0, dash)).toLowerCase();
}

/** Everything per-creative that the features read, computed once at catalog load. */
export interface PreparedCreative {
  readonly creative: Creative;
  readonly creativeId: string;
  readonly campaignId: string;
  readonly creativeIdHash: number;
  readonly campaignIdHash: number;
  readonly adCategoryHash: number;
  /** Unmixed FNV keys of the creative id and of the campaign's set of top-level categories, for the crosses. */
  readonly creativeKey: number;
  readonly adTopsKey: number;
  /** Top-level IAB categories of the campaign, lower-cased, matched against the user's history. */
  readonly adTopCategories: readonly string[];
  readonly text: Float32Array;
  readonly image: Float32Array;
  /** `text` then `image` in one array where the image's place in a row follows the text's (the spec's layout): one copy into a row, not two. */
  readonly textImage: Float32Array | null;
  /**
   * 12 hex digits of a hash of every field of the creative and its campaign that the features
   * read. A bid record carries it, so training can leave out a row the catalog has changed since
   * the bid: rebuilt from today's creative, it would not be what the model saw. Taken from the
   * fields, not from the vectors, so logs can be rebuilt under another feature spec.
   */
  readonly fingerprint: string;
}

export interface FeatureBuilder {
  readonly spec: FeatureSpec;
  /** Throws if the creative's image embedding has the wrong length (catalog errors surface at load). */
  prepareCreative(c: Creative, campaign: Pick<Campaign, 'cat'>): PreparedCreative;
  /** Writes row `row` of `sparse` (spec.sparseFields ids per row) and `dense` (spec.denseDim per row). */
  writeRow(
    ctx: ImpContext,
    creative: PreparedCreative,
    profile: UserProfile | undefined,
    sparse: Int32Array,
    dense: Float32Array,
    row: number,
  ): void;
  /**
   * Rows `firstRow`, `firstRow + 1`, … for one imp and several creatives: the same values as
   * writeRow per creative (test/features.test.ts), with the imp's fields hashed once.
   */
  writeRows(
    ctx: ImpContext,
    creatives: readonly PreparedCreative[],
    profile: UserProfile | undefined,
    sparse: Int32Array,
    dense: Float32Array,
    firstRow: number,
  ): void;
  /** Typed arrays sized for `rows` rows. */
  allocate(rows: number): { sparse: Int32Array; dense: Float32Array };
  /** Lower-cased word unigrams and bigrams of title + keywords, signed-hashed, L2-normalised. */
  textVector(title: string, keywords: readonly string[]): Float32Array;
}

/**
 * PreparedCreative.fingerprint: of every field of the creative and its campaign the features read.
 * Also what the CTR calibration tells one creative of an id from another by (src/pace/calibration.ts),
 * whose callers may know only the ids (the simulator's catalogs): a field missing hashes as null.
 */
export function creativeFingerprint(
  c: { readonly id: string; readonly campaignId: string; readonly title?: string; readonly keywords?: readonly string[]; readonly imageEmbedding?: readonly number[] },
  campaign: { readonly cat?: readonly string[] },
): string {
  return createHash('sha256')
    .update(JSON.stringify([c.id, c.campaignId, c.title, c.keywords, c.imageEmbedding, campaign.cat]))
    .digest('hex')
    .slice(0, 12);
}

export function createFeatureBuilder(spec: FeatureSpec = FEATURE_SPEC): FeatureBuilder {
  if (spec.sparseFields !== SPARSE_FIELDS.length || spec.sparseFieldNames.join() !== SPARSE_FIELDS.join()) {
    throw new Error(`feature spec ${spec.hash} lists fields this builder does not write`);
  }
  const F = spec.sparseFields;
  const D = spec.denseDim;
  const mod = spec.hashBuckets - 1;
  const S = Object.fromEntries(SPARSE_FIELDS.map((f) => [f, fieldSeed(f)])) as Record<SparseField, number>;
  // Segment slots share one seed: a segment gets the same id whichever slot it lands in.
  const segmentSeed = fieldSeed('segment');
  const textSeed = fieldSeed('text');
  const textSignSeed = fieldSeed('text-sign');
  const { text: textOff, image: imageOff, user: userOff, bias: biasOff } = spec.denseLayout;

  // 0 is reserved for 'absent', so present values map into 1..hashBuckets-1.
  const bucket = (h: number) => 1 + (fmix32(h) % mod);
  const str = (s: number, v: string) => (v.length === 0 ? 0 : bucket(fnvString(s, v)));
  const int = (s: number, v: number) => bucket(fnvInt(s, v | 0));

  function textVector(title: string, keywords: readonly string[]): Float32Array {
    const v = new Float32Array(spec.textDim);
    const words = [title, ...keywords]
      .join(' ')
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .filter((w) => w.length > 0);
    const add = (token: string) => {
      const i = fmix32(fnvString(textSeed, token)) % spec.textDim;
      const sign = fmix32(fnvString(textSignSeed, token)) & 1 ? 1 : -1;
      v[i] += sign;
    };
    for (let i = 0; i < words.length; i++) {
      add(words[i]);
      if (i + 1 < words.length) add(`${words[i]} ${words[i + 1]}`);
    }
    let norm = 0;
    for (const x of v) norm += x * x;
    if (norm > 0) {
      const k = 1 / Math.sqrt(norm);
      for (let i = 0; i < v.length; i++) v[i] *= k;
    }
    return v;
  }

  function prepareCreative(c: Creative, campaign: Pick<Campaign, 'cat'>): PreparedCreative {
    if (!Array.isArray(c.imageEmbedding) || c.imageEmbedding.length !== spec.imageDim || !c.imageEmbedding.every(Number.isFinite)) {
      throw new Error(`creative ${c.id}: imageEmbedding must be ${spec.imageDim} finite numbers`);
    }
    const adTopCategories = [...new Set(campaign.cat.map(topLevel))];
    const text = textVector(c.title, c.keywords);
    const image = Float32Array.from(c.imageEmbedding);
    let textImage: Float32Array | null = null;
    if (textOff + text.length === imageOff) {
      textImage = new Float32Array(text.length + image.length);
      textImage.set(text);
      textImage.set(image, text.length);
    }
    return Object.freeze({
      creative: c,
      creativeId: c.id,
      campaignId: c.campaignId,
      creativeIdHash: str(S.creative, c.id),
      campaignIdHash: str(S.campaign, c.campaignId),
      adCategoryHash: campaign.cat.length > 0 ? str(S.adCategory, campaign.cat[0]) : 0,
      adTopCategories,
      creativeKey: fnvString(FNV_OFFSET, c.id),
      adTopsKey: fnvString(FNV_OFFSET, [...adTopCategories].sort().join(',')),
      text,
      image,
      textImage,
      // A field read above and left out of creativeFingerprint is a catalog edit training cannot see (test/features.test.ts checks).
      fingerprint: creativeFingerprint(c, campaign),
    });
  }

  function overlap(history: readonly string[], tops: readonly string[]): number {
    if (history.length === 0) return 0;
    let hits = 0;
    for (let i = 0; i < history.length; i++) {
      for (let j = 0; j < tops.length; j++) {
        if (sameTopLevel(history[i], tops[j])) {
          hits++;
          break;
        }
      }
    }
    return hits / history.length;
  }

  // What writeContext learnt about the imp that writeCreative's crosses need; both run for the
  // same imp in writeRow and writeRows, context first.
  const segmentKeys = new Int32Array(SEGMENT_SLOTS);
  let segmentCount = 0;
  let pageTopKey = 0;

  /** Every field that depends on the imp and the user only. */
  function writeContext(ctx: ImpContext, profile: UserProfile | undefined, sparse: Int32Array, dense: Float32Array, row: number): void {
    const s = row * F;
    sparse[s + 0] = str(S.exchange, ctx.exchange);
    // App and site ids share a namespace in OpenRTB; the isApp bit keeps them apart.
    sparse[s + 1] = str(ctx.isApp ? S.siteOrApp ^ 0x5a5a5a5a : S.siteOrApp, ctx.siteOrAppId);
    sparse[s + 2] = str(S.publisher, ctx.publisherId);
    sparse[s + 3] = str(S.domain, ctx.domain);
    sparse[s + 4] = ctx.categories.length > 0 ? str(S.category, ctx.categories[0]) : 0;
    // The IAB tier-1 parent as its own field: behaviour is shared across a parent's subcategories.
    sparse[s + 5] = ctx.categories.length > 0 && ctx.categories[0].length > 0 ? bucket(fnvTopLevel(S.categoryTop, ctx.categories[0])) : 0;
    sparse[s + 6] = int(S.deviceType, ctx.deviceType);
    sparse[s + 7] = str(S.os, ctx.os);
    sparse[s + 8] = str(S.country, ctx.country);
    sparse[s + 9] = str(S.region, ctx.region);
    sparse[s + 10] = ctx.w > 0 && ctx.h > 0 ? bucket(fnvInt(fnvInt(S.size, ctx.w), ctx.h)) : 0;
    sparse[s + 11] = str(S.format, ctx.format);
    sparse[s + 12] = int(S.hour, ctx.hour);
    sparse[s + 13] = str(S.deal, ctx.dealId);
    sparse[s + HOUR_DEVICE] = bucket(fnvInt(fnvInt(S.hourDevice, ctx.hour), ctx.deviceType));
    pageTopKey = ctx.categories.length > 0 && ctx.categories[0].length > 0 ? fnvTopLevel(FNV_OFFSET, ctx.categories[0]) : 0;
    segmentCount = 0;

    const d = row * D;
    dense[d + biasOff] = 1;
    const u = d + userOff;
    if (!ctx.userDataAllowed) {
      for (let k = 0; k < SEGMENT_SLOTS; k++) sparse[s + SEGMENT_OFFSET + k] = 0;
      for (let k = 0; k < USER_DENSE_FEATURES.length; k++) dense[u + k] = 0;
      return;
    }
    const segs = ctx.segments;
    segmentCount = Math.min(segs.length, SEGMENT_SLOTS);
    for (let k = 0; k < SEGMENT_SLOTS; k++) {
      sparse[s + SEGMENT_OFFSET + k] = k < segs.length ? str(segmentSeed, segs[k]) : 0;
      segmentKeys[k] = k < segs.length ? fnvString(FNV_OFFSET, segs[k]) : 0;
    }
    if (profile === undefined) {
      for (let k = 0; k < USER_DENSE_FEATURES.length; k++) dense[u + k] = 0;
      return;
    }
    dense[u + 0] = 1;
    // Squashed so the long tail of heavy users does not dominate the dense input scale.
    dense[u + 4] = Math.log1p(profile.seenCategories.length) / 4;
  }

  /** Every field that depends on the creative (and, for the user block, on the user too). */
  function writeCreative(ctx: ImpContext, pc: PreparedCreative, profile: UserProfile | undefined, sparse: Int32Array, dense: Float32Array, row: number): void {
    const s = row * F;
    sparse[s + 14] = pc.creativeIdHash;
    sparse[s + 15] = pc.campaignIdHash;
    sparse[s + 16] = pc.adCategoryHash;
    sparse[s + PAGE_CREATIVE] = pageTopKey === 0 ? 0 : bucket(fnvInt(fnvInt(S.pageCreative, pageTopKey), pc.creativeKey));
    sparse[s + DEVICE_CREATIVE] = bucket(fnvInt(fnvInt(S.deviceCreative, ctx.deviceType), pc.creativeKey));
    // A segment's effect is averaged over the user's segments, so the count is part of the cross.
    // Slots share one seed, as the segment fields do. segmentCount is 0 without user data.
    for (let k = 0; k < SEGMENT_SLOTS; k++) {
      sparse[s + SEGMENT_AD_OFFSET + k] = k < segmentCount ? bucket(fnvInt(fnvInt(fnvInt(S.segmentAd0, segmentKeys[k]), pc.adTopsKey), segmentCount)) : 0;
    }
    const d = row * D;
    if (pc.textImage !== null) dense.set(pc.textImage, d + textOff);
    else (dense.set(pc.text, d + textOff), dense.set(pc.image, d + imageOff));
    if (!ctx.userDataAllowed || profile === undefined) return;
    const u = d + userOff;
    dense[u + 1] = overlap(profile.seenCategories, pc.adTopCategories);
    dense[u + 2] = overlap(profile.clickedCategories, pc.adTopCategories);
    dense[u + 3] = Math.log1p(profile.campaignImpressions[pc.campaignId] ?? 0);
  }

  function writeRow(ctx: ImpContext, pc: PreparedCreative, profile: UserProfile | undefined, sparse: Int32Array, dense: Float32Array, row: number): void {
    writeContext(ctx, profile, sparse, dense, row);
    writeCreative(ctx, pc, profile, sparse, dense, row);
  }

  function writeRows(ctx: ImpContext, pcs: readonly PreparedCreative[], profile: UserProfile | undefined, sparse: Int32Array, dense: Float32Array, firstRow: number): void {
    if (pcs.length === 0) return;
    writeContext(ctx, profile, sparse, dense, firstRow);
    // The context's hashes once, copied to the imp's other rows; each row then gets its creative.
    for (let i = 1; i < pcs.length; i++) {
      sparse.copyWithin((firstRow + i) * F, firstRow * F, (firstRow + 1) * F);
      dense.copyWithin((firstRow + i) * D, firstRow * D, (firstRow + 1) * D);
    }
    for (let i = 0; i < pcs.length; i++) writeCreative(ctx, pcs[i], profile, sparse, dense, firstRow + i);
  }

  function allocate(rows: number) {
    return { sparse: new Int32Array(rows * F), dense: new Float32Array(rows * D) };
  }

  return { spec, prepareCreative, writeRow, writeRows, allocate, textVector };
}

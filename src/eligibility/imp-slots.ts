/**
 * An imp's slot keys, read from its media objects: what the catalog index looks creatives up by
 * (every creative is indexed under its slot: a banner size, or its media type).
 */
import type { MediaType } from '../types.js';
import { slotKey, type Catalog } from './catalog.js';

type Obj = Record<string, any>;

/** An imp's slot keys, media type and the size features read: filled by `impSlots`, one object reused. */
export interface ImpSlots {
  slots: string[];
  format: MediaType;
  w: number;
  h: number;
}

/**
 * `slotKey('banner', w, h)` for the sizes requests name, each built once: a size that is a small
 * whole number, from a cache emptied when it holds SLOT_CACHE sizes; any other as it comes.
 */
const bannerSlots = new Map<number, string>();
const SLOT_CACHE = 1024;
function bannerSlot(w: unknown, h: unknown): string {
  if (!(typeof w === 'number' && typeof h === 'number' && Number.isInteger(w) && Number.isInteger(h) && w >= 0 && h >= 0 && w < 32768 && h < 32768)) return slotKey('banner', w as number, h as number);
  const k = w * 32768 + h;
  let s = bannerSlots.get(k);
  if (s === undefined) {
    if (bannerSlots.size >= SLOT_CACHE) bannerSlots.clear();
    bannerSlots.set(k, (s = slotKey('banner', w, h)));
  }
  return s;
}

/** A banner size some creative of the catalog has, with its slot key. */
export interface BannerSize {
  w: number;
  h: number;
  slot: string;
}

/** The distinct banner sizes of the catalog's creatives, in catalog order. */
export function bannerSizesOf(catalog: Catalog): BannerSize[] {
  const out = new Map<string, BannerSize>();
  for (const { creative: c } of catalog.candidates) {
    if (c.format !== 'banner' || !(c.w! > 0 && c.h! > 0)) continue;
    const slot = slotKey('banner', c.w, c.h);
    if (!out.has(slot)) out.set(slot, { w: c.w!, h: c.h!, slot });
  }
  return [...out.values()];
}

/**
 * How far a creative's height may be from the height a flexible format's ratio gives its width:
 * this share of it, or one pixel where that is more. Sizes are whole pixels, so a ratio holds only
 * to a pixel (728x90 is the 8:1 leaderboard, 91 px tall at 728); 300x250 in a square slot does not.
 */
const FLEX_RATIO_TOLERANCE = 0.01;

/**
 * Appends to `slots` (from position `n`; returns the new count) the slot of every catalog banner
 * size a flexible format entry (OpenRTB 2.6 §3.2.10 `wratio`, `hratio`, `wmin`) permits: of its
 * ratio (within FLEX_RATIO_TOLERANCE) and at least `wmin` wide. The index holds creatives by exact
 * size, so a ratio is offered as the sizes that have it.
 */
function flexSlots(f: Obj, sizes: readonly BannerSize[], slots: string[], n: number): number {
  const wmin = typeof f.wmin === 'number' ? f.wmin : 0;
  next: for (const s of sizes) {
    const h = (s.w * f.hratio) / f.wratio;
    if (s.w < wmin || Math.abs(s.h - h) > Math.max(1, h * FLEX_RATIO_TOLERANCE)) continue;
    for (let i = 0; i < n; i++) if (slots[i] === s.slot) continue next;
    slots[n++] = s.slot;
  }
  return n;
}

/** An exchange's `formats` as bits, which `impSlots` reads per imp. */
const FORMAT_BIT: Readonly<Record<MediaType, number>> = { banner: 1, video: 2, audio: 4, native: 8 };

export function formatBits(formats: readonly MediaType[]): number {
  let bits = 0;
  for (const f of formats) bits |= FORMAT_BIT[f];
  return bits;
}

/**
 * Fills `out` for an imp, from the media objects of the formats in `allowed` (`FORMAT_BIT`s) only:
 * one of another format is not offered, so no creative of it is found for the imp (every
 * creative is indexed under its slot). `out.slots` is written by index and cut to length, so an
 * array kept across imps keeps its storage (`length = 0` would drop it).
 */
export function impSlots(imp: Obj, allowed: number, sizes: readonly BannerSize[], out: ImpSlots): void {
  const slots = out.slots;
  let n = 0;
  let format: MediaType = 'banner';
  let w = 0;
  let h = 0;
  const b = allowed & FORMAT_BIT.banner ? imp.banner : undefined;
  const video = allowed & FORMAT_BIT.video ? imp.video : undefined;
  const audio = allowed & FORMAT_BIT.audio ? imp.audio : undefined;
  if (b) {
    // Banner's slots come first (n is 0 here). The imp's size, which features and the pacer's
    // segment read, is the first size listed, else `w`/`h`.
    let sized = false;
    // Whether `format` permits any size: an entry with a size or a ratio.
    let listed = false;
    if (Array.isArray(b.format))
      for (const f of b.format) {
        if (!f) continue;
        if (f.w && f.h) {
          if (!sized) ((w = f.w), (h = f.h), (sized = true));
          slots[n++] = bannerSlot(f.w, f.h);
          listed = true;
        } else if (typeof f.wratio === 'number' && typeof f.hratio === 'number' && f.wratio > 0 && f.hratio > 0) {
          n = flexSlots(f, sizes, slots, n);
          listed = true;
        }
      }
    // OpenRTB 2.6 §3.2.6: `format` lists "the banner sizes permitted"; `w`/`h` are the size only
    // "if no format objects are specified" (a flexible format permits its ratio, not `w`/`h`).
    // Entries that give neither a size nor a ratio ({}, {w: 0, h: 0}, {w: 300}) permit nothing,
    // and are read as none: such a request had `w`/`h` answered before 506dc69.
    if (!listed && b.w && b.h) slots[n++] = bannerSlot(b.w, b.h);
    if (!sized) {
      w = b.w ?? b.format?.[0]?.w ?? 0;
      h = b.h ?? b.format?.[0]?.h ?? 0;
    }
  }
  if (video) {
    slots[n++] = 'video';
    if (!b) ((format = 'video'), (w = video.w ?? 0), (h = video.h ?? 0));
  }
  if (audio) {
    slots[n++] = 'audio';
    if (!b && !video) format = 'audio';
  }
  if (allowed & FORMAT_BIT.native && imp.native) {
    slots[n++] = 'native';
    if (!b && !video && !audio) format = 'native';
  }
  if (slots.length !== n) slots.length = n;
  out.format = format;
  out.w = typeof w === 'number' ? w : 0;
  out.h = typeof h === 'number' ? h : 0;
}

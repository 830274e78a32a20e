/**
 * Dayparting's time zones: a campaign's `targeting.hours` are read in UTC (the default), in an IANA
 * zone it names (`America/New_York`: the zone's own hours, daylight saving included), or in the
 * user's local time (`user`: the request's `device.geo.utcoffset`, UTC where it is absent).
 */
export const USER_ZONE = 'user';

const formats = new Map<string, Intl.DateTimeFormat>();
function format(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (f === undefined) formats.set(zone, (f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hour: 'numeric', hourCycle: 'h23' })));
  return f;
}

/** Whether `zone` is a time zone dayparting can use: `UTC`, `user`, or one the runtime knows. */
export function isDaypartZone(zone: string): boolean {
  if (zone === 'UTC' || zone === USER_ZONE) return true;
  try {
    format(zone);
    return true;
  } catch {
    return false;
  }
}

// Every zone's offset is a whole number of quarter hours, so its hour holds through a UTC quarter hour.
const QUARTER_MS = 15 * 60_000;
const hours = new Map<string, { quarter: number; hour: number }>();

/** The hour of the day (0-23) in IANA zone `zone` at epoch ms `ms`. */
export function zoneHour(zone: string, ms: number): number {
  const quarter = Math.floor(ms / QUARTER_MS);
  const known = hours.get(zone);
  if (known !== undefined && known.quarter === quarter) return known.hour;
  const hour = Number(format(zone).format(ms)) % 24;
  hours.set(zone, { quarter, hour });
  return hour;
}

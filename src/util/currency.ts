const MINOR_DIGITS = new Map<string, number>();

/** ISO 4217 minor digits as the runtime's Intl knows them (2 for a code it does not), cached. */
export function minorDigits(currency: string): number {
  let d = MINOR_DIGITS.get(currency);
  if (d === undefined) {
    d = 2;
    try {
      d = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    } catch {
      // Not a well-formed currency code (policies and requests are checked before): the cent.
    }
    MINOR_DIGITS.set(currency, d);
  }
  return d;
}

/**
 * SIGHUP for the whole CLI, from its first moment. `serve` reloads the policies on it; before the
 * serve action runs, the process spends seconds loading the CLI's modules (commander,
 * TensorFlow.js, ...), and a SIGHUP left to Node's default meanwhile ended it (systemctl reload
 * right after start). Held from src/cli.ts's first line: ignored with a line until `serve` takes it
 * (`onHangup`) or another command gives it back to Node's default (`releaseHangups`).
 */
let handler = (): unknown => process.stderr.write('bidder: SIGHUP while starting: ignored; the policies are read as the start finds them, send it again once serving to reload\n');
const listener = (): unknown => handler();

export function holdHangups(): void {
  if (!process.listeners('SIGHUP').includes(listener)) process.on('SIGHUP', listener);
}

/** What a SIGHUP does from now on (held if it was not yet: serve run without src/cli.ts). */
export function onHangup(h: () => unknown): void {
  handler = h;
  holdHangups();
}

/** Node's default again: a command that does not serve ends on SIGHUP, as a terminal's hangup expects. */
export function releaseHangups(): void {
  process.off('SIGHUP', listener);
}

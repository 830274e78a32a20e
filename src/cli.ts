#!/usr/bin/env node
import { holdHangups, releaseHangups } from './cli/hangup.js';

// Before anything else loads: the static imports of the commands took seconds (src/cli/hangup.ts).
holdHangups();

// One after another: Node 20's loader can fail concurrent dynamic imports that share a builtin
// ("request for 'node:fs' is not in cache", ERR_VM_MODULE_LINK_FAILURE; nodejs/node#52187), which
// ended a `train` at start in CI at 5ac47a8. The loading itself is on one thread either way.
const { Command } = await import('commander');
const { registerServe } = await import('./cli/serve.js');
const { registerMlCommands } = await import('./cli/ml.js');
const { registerReport } = await import('./cli/report.js');
const { registerReplay } = await import('./cli/pacing.js');
const { registerCatalog } = await import('./cli/catalog.js');

const program = new Command('bidder')
  .description('OpenRTB 2.5/2.6 bidder: serve bids, train and evaluate the CTR model, simulate a market')
  // A mistyped flag gets its one line of error and a pointer, not the whole usage after it, and
  // exits 2 as every other piece of bad input does (src/cli/common.ts); help asked for exits 0.
  // Set before the commands are registered: commander copies both to each of them.
  .showHelpAfterError('(add --help for the options)')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
registerServe(program);
registerMlCommands(program);
registerReport(program);
registerReplay(program);
registerCatalog(program);
program.hook('preAction', (_, command) => {
  if (command.name() !== 'serve') releaseHangups();
});

await program.parseAsync(process.argv);

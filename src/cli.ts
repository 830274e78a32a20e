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
  .showHelpAfterError();
registerServe(program);
registerMlCommands(program);
registerReport(program);
registerReplay(program);
registerCatalog(program);
program.hook('preAction', (_, command) => {
  if (command.name() !== 'serve') releaseHangups();
});

await program.parseAsync(process.argv);

#!/usr/bin/env node
import { holdHangups, releaseHangups } from './cli/hangup.js';

// Before anything else loads: the static imports of the commands took seconds (src/cli/hangup.ts).
holdHangups();

const [{ Command }, { registerServe }, { registerMlCommands }, { registerReport }, { registerReplay }, { registerCatalog }] = await Promise.all([
  import('commander'),
  import('./cli/serve.js'),
  import('./cli/ml.js'),
  import('./cli/report.js'),
  import('./cli/pacing.js'),
  import('./cli/catalog.js'),
]);

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

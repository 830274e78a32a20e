#!/usr/bin/env node
import { Command } from 'commander';
import { registerServe } from './cli/serve.js';
import { registerMlCommands } from './cli/ml.js';
import { registerReport } from './cli/report.js';
import { registerReplay } from './cli/pacing.js';
import { registerCatalog } from './cli/catalog.js';

const program = new Command('bidder')
  .description('OpenRTB 2.5/2.6 bidder: serve bids, train and evaluate the CTR model, simulate a market')
  .showHelpAfterError();
registerServe(program);
registerMlCommands(program);
registerReport(program);
registerReplay(program);
registerCatalog(program);

await program.parseAsync(process.argv);

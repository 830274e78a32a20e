import { createMemoryLedger } from '../src/ledger/index.js';
import { runLedgerSuite } from './ledger.suite.js';

runLedgerSuite('in-process, no journal', () => (o) => createMemoryLedger(o), { propertyRuns: 200, durable: false, forgetsAfterMs: 20_000 });

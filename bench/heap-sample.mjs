// Preloaded into the bidder by `npm run bench:alloc -- --sample` (node --import): V8's sampling
// heap profiler, counting objects the GC has already collected too (Node 20 honours the
// includeObjectsCollectedBy* flags), started on the first SIGUSR2 and written to
// $BIDDER_HEAP_SAMPLE (JSON) on the second. Bench only: nothing in src/ loads it.
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

const out = process.env.BIDDER_HEAP_SAMPLE;
const session = new Session();
session.connect();
let on = false;
process.on('SIGUSR2', async () => {
  if (!on) {
    on = true;
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  const { profile } = await session.post('HeapProfiler.stopSampling');
  // Renamed into place: the bench reads the file as soon as it exists, and a large profile takes
  // long enough to write that it read half of one.
  writeFileSync(`${out}.part`, JSON.stringify(profile));
  renameSync(`${out}.part`, out);
});

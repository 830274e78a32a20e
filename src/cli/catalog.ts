import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { generateCatalogYaml } from '../catalog/generate.js';
import { fail, outputDir } from './common.js';

/** `bidder catalog`: a synthetic policy set of N campaigns, byte-identical for the same seed. */
export function registerCatalog(program: Command): void {
  program
    .command('catalog')
    .description('generate a synthetic catalog of N campaigns (varied targeting, every media type, budgets); same seed, same bytes')
    .option('--campaigns <n>', 'number of campaigns (at most 100,000)', '1000')
    .option('--seed <n>', 'seed, an integer from 0 to 4294967295 (it names the ids: g<seed>-c<i>)', '1')
    .option('--out <dir>', 'write a whole policy directory here (campaigns.yaml, plus exchanges.yaml and currency.yaml copied from --from); without it, campaigns.yaml goes to stdout')
    .option('--from <dir>', 'policy directory whose exchanges.yaml and currency.yaml are copied', 'policies')
    .action((o: { campaigns: string; seed: string; out?: string; from: string }) => {
      const campaigns = Number(o.campaigns);
      // Digits only, in the 32-bit unsigned range the generator seeds with (seed >>> 0): `1e21` made
      // ids `g1e+21-c0` that serve refuses, '' was read as 0, and 1 and 4294967297 drew the same
      // numbers under different ids.
      const seed = /^[0-9]+$/.test(o.seed) ? Number(o.seed) : NaN;
      // A bound on the file written: 100,000 campaigns are about 125 MB of YAML.
      if (!Number.isInteger(campaigns) || campaigns < 1 || campaigns > 100_000) fail(`--campaigns must be an integer from 1 to 100000, got ${o.campaigns}`, 2);
      if (!(Number.isInteger(seed) && seed <= 0xffff_ffff)) fail(`--seed must be an integer from 0 to 4294967295, got '${o.seed}'`, 2);
      if (!o.out) {
        // A reader that stops early (`| head`) is not an error, as for simulate.
        process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(0) : fail(err.message)));
        process.stdout.write(generateCatalogYaml({ campaigns, seed }));
        return;
      }
      const copied = ['exchanges.yaml', 'currency.yaml'];
      for (const f of copied) if (!existsSync(join(o.from, f))) fail(`${join(o.from, f)} does not exist (--from names the policy directory to copy it from)`, 2);
      outputDir('--out', o.out);
      const yaml = generateCatalogYaml({ campaigns, seed });
      for (const f of copied) copyFileSync(join(o.from, f), join(o.out, f));
      writeFileSync(join(o.out, 'campaigns.yaml'), yaml);
      process.stderr.write(`bidder: wrote ${campaigns} campaigns (seed ${seed}) to ${join(o.out, 'campaigns.yaml')}\n`);
    });
}

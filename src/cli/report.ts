import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { barChart, lineChart } from '../plot/plot.js';
import { campaignsFrom, fail, outputDir } from './common.js';
import { eventFiles, readEvents } from '../eventlog/read.js';
import { reportOf, type Report } from '../report/report.js';
import { BASELINE_ASSUMES, baselinesOf, type CampaignBaselines } from '../report/baselines.js';
import { LogTally, type Days } from '../report/tally.js';
import { utcDay } from '../ledger/budget.js';

// A rate with nothing to divide by is null in the report, and a dash here.
const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(2)}%`);
// Trailing zeros past the cents dropped: "999.990000" is $999.99, "0.06800" $0.068.
const trim = (s: string) => s.replace(/(\.\d\d\d*?)0+$/, '$1');
// Spend as recorded: the ledger settles in micro-dollars, so six decimals hold every digit of it
// (987.654 is not $987.7, nor 999.99 $1000), printed with at least the cents.
const money = (x: number) => `$${trim(x.toFixed(6))}`;
// A CPC or CPA is a quotient with no exact form: four significant digits (0.068 is not $0.07, nor
// 0.00275 $0.00), and at least the cents, so that 999.99 is not $1000.
function rate(x: number | null): string {
  if (x === null) return '–';
  const decimals = x === 0 ? 2 : Math.min(100, Math.max(2, 3 - Math.floor(Math.log10(Math.abs(x)))));
  return `$${trim(x.toFixed(decimals))}`;
}
const ratio = (x: number | null) => (x === null ? '–' : x.toFixed(2));

function table(r: Report): string {
  const rows = [
    '| campaign | impressions | clicks | conversions | spend | of which over budget | CTR | CVR | CPC | CPA | ROI | ROAS | predicted clicks |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const c of r.campaigns) {
    const t = c.totals;
    rows.push(`| ${c.id} | ${t.impressions} | ${t.clicks} | ${t.conversions} | ${money(t.spendUsd)} | ${money(t.overspendUsd)} | ${pct(t.ctr)} | ${pct(t.cvr)} | ${rate(t.cpcUsd)} | ${rate(t.cpaUsd)} | ${ratio(t.roi)} | ${ratio(t.roas)} | ${t.predictedClicks.toFixed(1)} |`);
  }
  // Under the table, and only where there are some: what the exchange bills that no column holds.
  const refused = r.campaigns.filter((c) => c.refusedLate.notices > 0);
  if (refused.length > 0) rows.push('');
  for (const c of refused) rows.push(`${c.id}: billed by the exchange past the notice window, not recorded as spend: ${c.refusedLate.notices} impressions, ${money(c.refusedLate.billedUsd)}`);
  return rows.join('\n');
}

function baselineTable(bs: readonly CampaignBaselines[]): string {
  const rows = [
    'Against baselines, in expected clicks (pCTR), on the auctions whose market price the log records (first price: the competing bid, from min-to-win), at the money the bidder spent on them each day (--json: what each figure assumes):',
    '',
    '| campaign | auctions compared (first price) | left out (first price without min-to-win / price unknown / no outcome) | bidder | linHindsight | linFit | pidLinear | dualDescent | lpPctr bound | bidder / linHindsight |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const b of bs) {
    rows.push(`| ${b.campaignId} | ${b.auctions} (${b.firstPriceAuctions}) | ${b.leftOut.firstPrice} / ${b.leftOut.priceUnknown} / ${b.leftOut.noOutcome} | ${b.bidder.expectedClicks.toFixed(2)} | ${b.linHindsight.expectedClicks.toFixed(2)} | ${b.linFit.expectedClicks.toFixed(2)} | ${b.pidLinear.expectedClicks.toFixed(2)} | ${b.dualDescent.expectedClicks.toFixed(2)} | ${b.lpPctr.expectedClicks.toFixed(2)} | ${b.auctions > 0 ? b.bidderVsLinHindsight.toFixed(3) : '–'} |`);
  }
  return rows.join('\n');
}

/** A UTC day given as yyyy-mm-dd, as its day number; a date no calendar holds ends the command. */
function dayOf(flag: string, iso: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(iso) ? Date.parse(`${iso}T00:00:00Z`) : NaN;
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== iso) fail(`${flag} must be a UTC day yyyy-mm-dd, got ${JSON.stringify(iso)}`, 2);
  return utcDay(ms);
}

/** `bidder report`: the ad-effect report from the bidder's own event log. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description('ad-effect report (CTR, CVR, CPC, CPA, ROI and ROAS, spend against target, predicted vs observed CTR) from event logs, and the bidder against linear baselines and the pCTR bound on the auctions whose price the log knows')
    .option('--events <paths...>', 'event-log files or directories', ['var/events'])
    .option('--policies <dir>', 'policy directory (goal values and budgets)', 'policies')
    .option('--json', 'print one JSON object instead of a table')
    .option('--since <day>', 'count only the bids of this UTC day (yyyy-mm-dd) and later, with their notices whenever they came')
    .option('--until <day>', 'count only the bids of this UTC day (yyyy-mm-dd) and earlier, with their notices whenever they came')
    .option('--plot <dir>', 'write spend-vs-target, λ through the day (when the log records it), predicted-vs-observed CTR and, where auctions of known price were logged, baselines (SVG) here')
    .action(async (o: { events: string[]; policies: string; json?: boolean; since?: string; until?: string; plot?: string }) => {
      const since = o.since === undefined ? undefined : dayOf('--since', o.since);
      const until = o.until === undefined ? undefined : dayOf('--until', o.until);
      if (since !== undefined && until !== undefined && since > until) fail(`--since ${o.since} is after --until ${o.until}`, 2);
      const days: Days | undefined = since === undefined && until === undefined ? undefined : { since, until };
      if (o.plot) outputDir('--plot', o.plot);
      const campaigns = campaignsFrom(o.policies);
      let files: string[];
      try {
        files = eventFiles(o.events);
      } catch (err) {
        fail(`event log ${o.events.join(', ')}: ${(err as Error).message}`, 2);
      }
      // Each record is tallied as it is read and let go: what the figures need of a bid is a few
      // numbers, its context most of the log's bytes (src/report/tally.ts).
      const tally = new LogTally();
      let bad = 0;
      let gone = 0;
      try {
        for await (const r of readEvents(files, () => bad++, () => gone++)) tally.add(r);
      } catch (err) {
        // A gzipped file cut short or corrupt (the reader names it): a report on part of it would understate.
        fail(`event log ${(err as Error).message}`, 2);
      }
      if (tally.records === 0) {
        const notRecords = bad + tally.unplaced;
        fail(`no event records in ${o.events.join(', ')}${notRecords ? ` (${notRecords} lines that are not records)` : ''}${gone ? ` (${gone} files rotated away while read)` : ''}`, 2);
      }
      const report = reportOf(tally, campaigns, bad, gone, days);
      const baselines = baselinesOf(tally, days);
      if (o.plot) {
        const spend = report.campaigns.flatMap((c) =>
          c.days.flatMap((d) =>
            d.hours.flatMap((h) => [
              { campaign: c.id, t: `${d.day}T${String(h.hour).padStart(2, '0')}:59:59Z`, usd: h.cumulativeSpendUsd, series: 'spend' },
              { campaign: c.id, t: `${d.day}T${String(h.hour).padStart(2, '0')}:59:59Z`, usd: h.cumulativeTargetUsd, series: 'target' },
            ]),
          ),
        );
        writeFileSync(join(o.plot, 'spend-vs-target.svg'), await lineChart({ title: 'Cumulative spend against the pacing target (USD)', x: { field: 't', title: 'time (UTC)', type: 'temporal' }, y: { field: 'usd', title: 'USD' }, series: 'series', facet: 'campaign', rows: spend }));
        const ctr = report.campaigns.flatMap((c) =>
          c.days.flatMap((d) =>
            d.hours
              .filter((h) => h.effect.impressions > 0)
              .flatMap((h) => [
                { campaign: c.id, t: `${d.day}T${String(h.hour).padStart(2, '0')}:30:00Z`, ctr: h.effect.predictedClicks / h.effect.impressions, series: 'predicted' },
                // Only hours with impressions are plotted, so the observed CTR is a number.
                { campaign: c.id, t: `${d.day}T${String(h.hour).padStart(2, '0')}:30:00Z`, ctr: h.effect.ctr ?? 0, series: 'observed' },
              ]),
          ),
        );
        const lambda = report.campaigns.flatMap((c) =>
          c.days.flatMap((d) => d.hours.flatMap((h) => (h.meanLambda === null ? [] : [{ campaign: c.id, t: `${d.day}T${String(h.hour).padStart(2, '0')}:30:00Z`, lambda: h.meanLambda, series: 'λ' }]))),
        );
        if (lambda.length > 0) {
          writeFileSync(join(o.plot, 'lambda.svg'), await lineChart({ title: 'λ of the pacer through the day (mean over the hour\'s bids; bid = value / λ)', x: { field: 't', title: 'time (UTC)', type: 'temporal' }, y: { field: 'lambda', title: 'λ' }, series: 'series', facet: 'campaign', rows: lambda }));
        }
        const compared = baselines.filter((b) => b.auctions > 0);
        if (compared.length > 0) {
          const bars = compared.flatMap((b) =>
            (['bidder', 'linHindsight', 'linFit', 'pidLinear', 'dualDescent', 'lpPctr'] as const).map((k) => ({ campaign: b.campaignId, strategy: k === 'lpPctr' ? 'lpPctr (bound)' : k, clicks: b[k].expectedClicks })),
          );
          writeFileSync(join(o.plot, 'baselines.svg'), await barChart({ title: 'Expected clicks per strategy and the pCTR bound, on auctions of known market price, at equal money', x: { field: 'strategy', title: null }, y: { field: 'clicks', title: 'expected clicks' }, facet: 'campaign', rows: bars }));
        }
        writeFileSync(join(o.plot, 'ctr-predicted-vs-observed.svg'), await lineChart({ title: 'CTR: predicted against observed, per hour', x: { field: 't', title: 'time (UTC)', type: 'temporal' }, y: { field: 'ctr', title: 'CTR' }, series: 'series', facet: 'campaign', rows: ctr }));
      }
      if (o.json) process.stdout.write(JSON.stringify({ ...report, baselines: { assumes: BASELINE_ASSUMES, campaigns: baselines } }) + '\n');
      else {
        const orphans = report.withoutImpression;
        const orphanLine = orphans.clicks || orphans.conversions ? `; ${orphans.clicks} clicks and ${orphans.conversions} conversions on bids with no impression in the log, left out` : '';
        const daysLine = !days ? '' : o.until === undefined ? `; the bids of ${o.since} and later counted` : o.since === undefined ? `; the bids of ${o.until} and earlier counted` : `; the bids of ${o.since} to ${o.until} counted`;
        const goneLine = report.filesGone ? `, ${report.filesGone} files rotated away while the log was read, not counted` : '';
        process.stdout.write(`${report.records} records${report.badLines ? `, ${report.badLines} unreadable lines skipped` : ''}${goneLine}${daysLine}${orphanLine}\n\n${table(report)}\n\n${baselineTable(baselines)}\n`);
        if (o.plot) process.stdout.write(`\ncharts written to ${o.plot}\n`);
      }
    });
}

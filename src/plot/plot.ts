import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Charts as SVG files, rendered headless by Vega-Lite (no canvas, no browser): reports, the
 * pacing simulation and the load test share this one renderer instead of hand-drawn SVG.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface LineChart {
  title: string;
  x: { field: string; title: string; type?: 'quantitative' | 'temporal' };
  y: { field: string; title: string };
  /** Field naming the series (one line each). */
  series: string;
  rows: Array<Record<string, number | string>>;
  /** Optional small multiples: one panel per value of this field. */
  facet?: string;
}

/** One chart, or with `facet` small multiples of it (two columns, each panel its own y scale). */
function layout(c: { title: string; rows: Array<Record<string, number | string>>; facet?: string }, mark: Mark, encoding: Encoding, single: Size, panel: Size): TopLevelSpec {
  return (
    c.facet
      ? {
          title: c.title,
          data: { values: c.rows },
          facet: { field: c.facet, type: 'nominal', title: null },
          columns: 2,
          spec: { ...panel, mark, encoding },
          resolve: { scale: { y: 'independent' } },
        }
      : { title: c.title, ...single, data: { values: c.rows }, mark, encoding }
  ) as TopLevelSpec;
}

type Mark = 'bar' | { type: 'line'; point: false };
type Encoding = Record<string, unknown>;
type Size = { width: number; height: number };

export function lineChart(c: LineChart): Promise<string> {
  const encoding = {
    // A time scale places and labels its ticks in the host's zone; the charts' times are UTC.
    x: { field: c.x.field, type: c.x.type ?? 'quantitative', title: c.x.title, ...(c.x.type === 'temporal' ? { scale: { type: 'utc' } } : {}) },
    y: { field: c.y.field, type: 'quantitative', title: c.y.title },
    color: { field: c.series, type: 'nominal', title: null },
  };
  return renderSvg(layout(c, { type: 'line', point: false }, encoding, { width: 640, height: 320 }, { width: 320, height: 180 }));
}

export interface BarChart {
  title: string;
  /** The bars' names (one bar each; title null: the names say it) and their heights. */
  x: { field: string; title: string | null };
  y: { field: string; title: string };
  rows: Array<Record<string, number | string>>;
  /** Optional small multiples: one panel per value of this field. */
  facet?: string;
}

export function barChart(c: BarChart): Promise<string> {
  const encoding = {
    x: { field: c.x.field, type: 'nominal', title: c.x.title, sort: null },
    y: { field: c.y.field, type: 'quantitative', title: c.y.title },
    color: { field: c.x.field, type: 'nominal', legend: null },
  };
  return renderSvg(layout(c, 'bar', encoding, { width: 480, height: 240 }, { width: 240, height: 160 }));
}

import type { HourUsage } from './api';

/**
 * Colours with at least 3:1 contrast against the white chart background (WCAG 1.4.11), one per outcome.
 * Stacked segments are separated by a white line, so each is told from its neighbour by that contrast and
 * not by hue alone; the legend and the table carry the same information as text.
 */
const VALID_COLOUR = '#1b7f3b';
const CODE_COLOURS = ['#b3261e', '#8a4b00', '#6b3fa0', '#0b5cad', '#00626b', '#a0306e', '#4d4d4d'];

export function codeColour(codes: string[], code: string): string {
  const i = codes.indexOf(code);
  return CODE_COLOURS[(i < 0 ? codes.length : i) % CODE_COLOURS.length];
}

function hourLabel(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, '0')}:00`;
}

/**
 * Verifications per hour as stacked bars (valid at the bottom, refusals by code above), drawn as plain
 * SVG elements by Preact: no canvas, no HTML strings, so it works under the console's Trusted Types CSP
 * and every bar has a text equivalent. The same numbers are in a table below it for screen readers.
 */
export function UsageChart({ hourly, title }: { hourly: HourUsage[]; title: string }) {
  const codes = [...new Set(hourly.flatMap((h) => Object.keys(h.refusedByCode)))].sort();
  const totals = hourly.map((h) => h.valid + h.refused);
  const max = Math.max(1, ...totals);
  const W = 720;
  const H = 200;
  const padL = 40;
  const padB = 24;
  const plotH = H - padB - 8;
  const bw = (W - padL) / Math.max(1, hourly.length);
  const valid = hourly.reduce((a, h) => a + h.valid, 0);
  const refused = hourly.reduce((a, h) => a + h.refused, 0);
  const byCode: Record<string, number> = {};
  for (const h of hourly) for (const [c, n] of Object.entries(h.refusedByCode)) byCode[c] = (byCode[c] ?? 0) + n;
  const summary = `Last ${hourly.length} h: ${valid} valid, ${refused} refused${codes.length ? ` (${codes.map((c) => `${c} ${byCode[c]}`).join(', ')})` : ''}`;
  const ticks = [0, Math.ceil(max / 2), max];
  const titleId = `chart-${title.replace(/\W+/g, '-')}`;
  return (
    <figure class="chart" data-valid={valid} data-refused={refused}>
      <figcaption id={titleId}>
        <strong>{title}</strong> <span class="chart-summary">{summary}</span>
      </figcaption>
      <div class="chart-scroll" tabIndex={0} role="region" aria-label={`${title} (chart)`}>
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={titleId} preserveAspectRatio="none">
          {ticks.map((t) => {
            const y = 8 + plotH - (t / max) * plotH;
            return (
              <g key={t}>
                <line x1={padL} x2={W} y1={y} y2={y} class="grid" />
                <text x={padL - 6} y={y + 4} class="axis" text-anchor="end">
                  {t}
                </text>
              </g>
            );
          })}
          {hourly.map((h, i) => {
            const x = padL + i * bw + 1;
            let y = 8 + plotH;
            const segs: Array<[string, number, string]> = [['valid', h.valid, VALID_COLOUR], ...codes.map((c): [string, number, string] => [c, h.refusedByCode[c] ?? 0, codeColour(codes, c)])];
            return (
              <g key={h.hour}>
                <title>{`${hourLabel(h.hour)}: ${h.valid} valid, ${h.refused} refused`}</title>
                {segs.map(([name, n, colour]) => {
                  if (!n) return null;
                  const hgt = (n / max) * plotH;
                  y -= hgt;
                  return <rect key={name} x={x} y={y} width={Math.max(1, bw - 2)} height={hgt} fill={colour} stroke="#fff" stroke-width={1} />;
                })}
                {i % Math.max(1, Math.ceil(hourly.length / 8)) === 0 && (
                  <text x={x + bw / 2} y={H - 6} class="axis" text-anchor="middle">
                    {hourLabel(h.hour)}
                  </text>
                )}
              </g>
            );
          })}
        </svg>
      </div>
      <ul class="legend" aria-label="legend">
        <li>
          <span class="swatch" data-colour="valid" /> valid
        </li>
        {codes.map((c) => (
          <li key={c}>
            <span class={`swatch code-${codes.indexOf(c) % CODE_COLOURS.length}`} /> {c}
          </li>
        ))}
      </ul>
      <details>
        <summary>Show the numbers as a table</summary>
        <div class="table-wrap" tabIndex={0} role="region" aria-label={`${title} (table)`}>
          <table>
            <caption class="sr-only">{title} per hour</caption>
            <thead>
              <tr>
                <th scope="col">Hour</th>
                <th scope="col">Valid</th>
                <th scope="col">Refused</th>
                {codes.map((c) => (
                  <th scope="col" key={c}>
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {hourly
                .filter((h) => h.valid + h.refused > 0)
                .map((h) => (
                  <tr key={h.hour}>
                    <th scope="row">
                      <time dateTime={h.hour}>{new Date(h.hour).toLocaleString()}</time>
                    </th>
                    <td>{h.valid}</td>
                    <td>{h.refused}</td>
                    {codes.map((c) => (
                      <td key={c}>{h.refusedByCode[c] ?? 0}</td>
                    ))}
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

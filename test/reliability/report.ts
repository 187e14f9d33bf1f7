import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '@latchkey/devstack';

/** One row of docs/reliability.md, written by the test that measured it. */
export interface ReliabilityRow {
  /** Test name as it should appear in the table. */
  test: string;
  /** What the test injects (fault, input, load). */
  injects: string;
  /** The figure measured, with its unit, e.g. "0 of 120 000 accepted". */
  figure: string;
  /** The target, e.g. "0", "<= 20 %". */
  target: string;
  pass: boolean;
}

export function resultsFile(): string {
  return path.join(projectRoot(), '.latchkey', 'reliability', 'results.jsonl');
}

/**
 * Record a measured figure. The suite writes rows as it runs; scripts/reliability-report.ts
 * turns them into docs/reliability.md, so the document is produced by the suite, not by hand.
 */
export function recordFigure(row: ReliabilityRow): void {
  const file = resultsFile();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, `${JSON.stringify({ ...row, at: new Date().toISOString() })}\n`);
  process.stdout.write(`[reliability] ${row.test}: ${row.figure} (target ${row.target}) ${row.pass ? 'PASS' : 'FAIL'}\n`);
}

/** Heavy runs (`LATCHKEY_RELIABILITY_HEAVY=1`) use the full case counts and durations. */
export const HEAVY = process.env.LATCHKEY_RELIABILITY_HEAVY === '1';

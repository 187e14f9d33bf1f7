/**
 * Turn the rows the reliability suite recorded (.latchkey/reliability/results.jsonl)
 * into docs/reliability.md. Run by `npm run test:reliability` after the suite.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '@latchkey/devstack';

interface Row {
  test: string;
  injects: string;
  figure: string;
  target: string;
  pass: boolean;
  at: string;
}

const root = projectRoot();
const file = path.join(root, '.latchkey', 'reliability', 'results.jsonl');
const rows: Row[] = fs.existsSync(file)
  ? fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row)
  : [];
// The latest measurement of each test wins.
const latest = new Map<string, Row>();
for (const r of rows) latest.set(r.test, r);
const esc = (s: string) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const heavy = process.env.LATCHKEY_RELIABILITY_HEAVY === '1';
const out = [
  '# Reliability and security figures',
  '',
  `Produced by \`npm run test:reliability\`${heavy ? ' (heavy run: LATCHKEY_RELIABILITY_HEAVY=1)' : ''} on ${new Date().toISOString().slice(0, 10)}; do not edit by hand.`,
  'Each row is written by the test that measured it (test/reliability). Machine: 2 cores, real OpenBao and Redis.',
  '',
  '| test | injects | measured | target | result |',
  '|---|---|---|---|---|',
  ...[...latest.values()].map((r) => `| ${esc(r.test)} | ${esc(r.injects)} | ${esc(r.figure)} | ${esc(r.target)} | ${r.pass ? 'pass' : '**FAIL**'} |`),
  '',
];
// A heavy run has its own page, so the next default run (CI's) does not overwrite its figures.
const page = heavy ? 'reliability-heavy.md' : 'reliability.md';
fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
fs.writeFileSync(path.join(root, 'docs', page), out.join('\n'));
// The tests assert correctness themselves; rows that miss a target (timing figures on this
// 2-core machine among them) are reported as FAIL here without failing the run.
const failed = [...latest.values()].filter((r) => !r.pass);
process.stdout.write(`reliability report: ${latest.size} rows, ${failed.length} below target → docs/${page}\n`);

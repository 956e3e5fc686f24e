// `--docs`: put this run's tables into docs/performance.md between the two markers, leaving the
// hand-written explanation around them alone.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSection, renderTargets } from './format.mjs';

const BEGIN = '<!-- bench:results:begin -->';
const END = '<!-- bench:results:end -->';

export function renderReport(report) {
  const m = report.machine;
  const head =
    `Run: ${report.kind}, ${report.startedAt} → ${report.finishedAt} (${Math.round(report.seconds)} s), ` +
    `Node ${m.node}, ${m.cpus} × ${m.cpu}, ${m.platform}.`;
  // Sections become level-3 headings inside the doc's "Latest results" section.
  const sections = report.sections.map((s) => renderSection(s).replace(/^## /, '### '));
  return [head, '', renderTargets(report.targets), '', ...sections].join('\n');
}

export function writeDocs(report) {
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'performance.md');
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${file} lacks the ${BEGIN} … ${END} markers`);
  writeFileSync(file, `${text.slice(0, start + BEGIN.length)}\n${renderReport(report)}\n${text.slice(end)}`);
  return file;
}

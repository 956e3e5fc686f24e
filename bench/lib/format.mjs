// Markdown output: every section returns tables of plain values and this turns them into text.

export function fmtInt(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Math.round(n).toLocaleString('en-US');
}

export function fmtNum(n, digits = 2) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return n.toFixed(digits);
}

export function fmtRatio(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return `${n.toFixed(2)}x`;
}

/** A table is { title, columns: string[], rows: (string|number)[][], notes?: string[] }. */
export function renderTable(table) {
  const lines = [];
  if (table.title) lines.push(`**${table.title}**`, '');
  lines.push(`| ${table.columns.join(' | ')} |`);
  lines.push(`| ${table.columns.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`);
  for (const row of table.rows) lines.push(`| ${row.map((cell) => String(cell)).join(' | ')} |`);
  for (const note of table.notes ?? []) lines.push('', note);
  return lines.join('\n');
}

export function renderSection(section) {
  const lines = [`## ${section.title}`, ''];
  const cal = section.calibration;
  lines.push(
    `Ran ${section.startedAt} → ${section.finishedAt} (${fmtNum(section.seconds, 1)} s); ` +
      `CPU calibration ${fmtNum(cal.beforeMs, 1)} ms before, ${fmtNum(cal.afterMs, 1)} ms after.`,
    '',
  );
  if (section.error) lines.push(`Section failed: ${section.error}`, '');
  for (const table of section.tables ?? []) lines.push(renderTable(table), '');
  for (const note of section.notes ?? []) lines.push(note, '');
  return lines.join('\n');
}

/** One row per target: what it asks, what was measured, met or not and by how much. */
export function renderTargets(targets) {
  return renderTable({
    title: 'Targets (from issues 3–6), this run',
    columns: ['Target', 'Wanted', 'Measured', 'Verdict'],
    rows: targets.map((t) => [t.name, t.wanted, t.measured, t.verdict]),
  });
}

/** ops/s for a table cell; flagged when some calls failed or came back degraded. */
export function fmtOps(result) {
  const text = fmtInt(result.opsPerSec);
  return result.failures > 0 ? `${text} ⚠ ${fmtInt(result.failures)} failed` : text;
}

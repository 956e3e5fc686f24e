// Target verdicts. A target is never lowered here: a miss is reported with its size.

/**
 * `measured` is the figure (a number, or undefined when it could not be measured), `threshold` what
 * the issue asks, `atMost` true when lower is better. `show` formats a figure for the table.
 */
export function verdict({ name, wanted, measured, threshold, atMost = false, show = String, why }) {
  if (measured === undefined || measured === null || Number.isNaN(measured)) {
    return { name, wanted, measured: '–', verdict: `not measured${why ? `: ${why}` : ''}`, met: null };
  }
  const met = atMost ? measured <= threshold : measured >= threshold;
  let how;
  if (met) {
    how = 'met';
  } else if (atMost) {
    how = `MISSED by ${percent((measured - threshold) / threshold)} (wanted ${wanted})`;
  } else {
    how = `MISSED by ${percent((threshold - measured) / threshold)} (wanted ${wanted})`;
  }
  return { name, wanted, measured: show(measured), verdict: how, met };
}

/** A shortfall as a percentage; one decimal below 10% so a near miss never reads "0%". */
function percent(fraction) {
  const p = fraction * 100;
  return `${p < 10 ? p.toFixed(1) : p.toFixed(0)}%`;
}

// The statistics every benchmark here reports, in one place: medians, nearest-rank percentiles
// and the spread of per-round ratios (machines this noisy need the quartiles, not one number).

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** Nearest-rank percentile. */
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

/** Median, quartiles and range of a list of ratios. */
export const spread = (xs) => ({ n: xs.length, median: median(xs), p25: percentile(xs, 25), p75: percentile(xs, 75), min: Math.min(...xs), max: Math.max(...xs) });

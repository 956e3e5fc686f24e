// The six algorithm names of the public contract (DESIGN.md), known without loading floodgate.
export const ALGORITHMS = [
  'fixed-window',
  'sliding-window',
  'sliding-log',
  'token-bucket',
  'leaky-bucket',
  'gcra',
];

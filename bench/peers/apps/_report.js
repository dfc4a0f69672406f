// Shared by the minimal apps: reports cold-start marks to the driver (bench/peers.mjs).
export const params = new URLSearchParams(location.search);
export const marks = {};
export const mark = (name) => (marks[name] = performance.now());
export function finish(extra = {}) {
  window.cold = { ...marks, ...extra };
}
export function fail(error) {
  window.cold = { error: String(error?.stack ?? error) };
}
export const doc = () => {
  const n = Math.floor(Math.random() * 1e6);
  return { id: `cold-${Date.now()}-${n}`, title: "cold start", done: false, tags: ["a"], n };
};

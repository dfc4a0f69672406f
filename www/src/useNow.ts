// Clock helpers for the "in 3 s" labels of the outbox, the badge and the dead letters.
import { useEffect, useState } from "react";

/** The current time, re-rendering every `periodMs` (for "in 3 s" style labels). */
export function useNow(periodMs = 1000): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), periodMs);
    return () => clearInterval(timer);
  }, [periodMs]);
  return now;
}

/** "now", "in 4 s", "12 s ago", "in 2 min"… */
export function relativeTime(at: number, now: number): string {
  const seconds = Math.round((at - now) / 1000);
  if (seconds === 0) return "now";
  const size = Math.abs(seconds);
  const amount = size < 60 ? `${size} s` : size < 3600 ? `${Math.round(size / 60)} min` : `${Math.round(size / 3600)} h`;
  return seconds > 0 ? `in ${amount}` : `${amount} ago`;
}

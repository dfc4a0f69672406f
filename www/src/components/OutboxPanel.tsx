// The outbox: local changes not yet acknowledged by the server, oldest first, with how often each
// was tried, when it will be tried next (the backoff schedule) and why the last try failed.
import type { OutboxEntry, SyncStatus } from "wharf";
import { useOutbox, useSyncStatus } from "wharf/react";
import { useDemo } from "../demoContext";
import { relativeTime, useNow } from "../useNow";
import { describeChange } from "./describeChange";

export function OutboxPanel() {
  const { db } = useDemo();
  const entries = useOutbox(db);
  const status = useSyncStatus(db);
  const now = useNow();
  return (
    <section className="card" aria-labelledby="outbox-heading">
      <h2 id="outbox-heading">
        Outbox: <span data-testid="outbox-count">{entries?.length ?? "…"}</span> pending
      </h2>
      {entries && entries.length > 0 ? (
        <table className="outbox">
          <thead>
            <tr>
              <th>op</th>
              <th>change</th>
              <th>attempts</th>
              <th>next attempt</th>
              <th>last error</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => (
              <OutboxRow key={entry.id} entry={entry} status={status} now={now} />
            ))}
          </tbody>
        </table>
      ) : (
        entries && <p className="muted">Everything is on the server.</p>
      )}
    </section>
  );
}

function OutboxRow({ entry, status, now }: { entry: OutboxEntry; status: SyncStatus | null; now: number }) {
  return (
    <tr data-testid="outbox-entry" data-op={entry.op} data-key={String(entry.key)} data-attempts={entry.attempts}>
      <td>
        <code>{entry.op}</code>
      </td>
      <td>{describeChange(entry)}</td>
      <td>{entry.attempts}</td>
      <td data-testid="next-attempt">{nextAttempt(entry, status, now)}</td>
      <td className="error-text">{entry.lastError ? `${entry.lastError.status ?? entry.lastError.code}: ${entry.lastError.message}` : ""}</td>
    </tr>
  );
}

function nextAttempt(entry: OutboxEntry, status: SyncStatus | null, now: number): string {
  if (status?.state === "paused") return "paused";
  if (status?.state === "offline") return "when online";
  if (entry.conflict) return "resolving conflict";
  if (entry.nextAttemptAt <= now) return entry.attempts === 0 ? "now" : "due now";
  return `${relativeTime(entry.nextAttemptAt, now)} (${new Date(entry.nextAttemptAt).toLocaleTimeString()})`;
}

// The sync status badge: state, pending ops, dead letters, and this tab's role.
import { useSyncStatus } from "wharf/react";
import { useDemo } from "../demoContext";
import { relativeTime, useNow } from "../useNow";

export function StatusBadge() {
  const { db } = useDemo();
  const status = useSyncStatus(db);
  const now = useNow(); // also picks up role changes, which have no event of their own
  if (!status) return null;
  const role = db.syncRole ?? "none";
  return (
    <div
      className={`badge state-${status.state}`}
      data-testid="sync-status"
      data-state={status.state}
      data-pending={status.pending}
      data-role={role}
      title={status.lastError ? `${status.lastError.code}: ${status.lastError.message}` : undefined}
    >
      <span className="dot" aria-hidden="true" />
      <strong>{status.state}</strong>
      <span>{status.pending} pending</span>
      {status.deadLetters > 0 && <span>{status.deadLetters} dead</span>}
      {status.nextRetryAt != null && status.state === "error" && <span>retry {relativeTime(status.nextRetryAt, now)}</span>}
      <span className="role" data-testid="sync-role">
        {role}
      </span>
    </div>
  );
}

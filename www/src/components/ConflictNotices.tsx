// Conflicts (db.onConflict): someone else changed a todo that had local edits; the collection's
// strategy (last writer wins here) settled it. Each notice says which side was kept.
import { useEffect, useState } from "react";
import type { ConflictEvent } from "wharf";
import { useDemo } from "../demoContext";

interface Notice extends ConflictEvent {
  id: number;
}

const KEPT: Record<ConflictEvent["outcome"], string> = {
  local: "your version was kept",
  remote: "the other version was kept",
  merged: "both were merged",
  unresolved: "not resolved yet (will retry)",
};

const title = (doc: Record<string, unknown> | null) => (doc ? `“${String(doc.title ?? "")}”` : "deleted");

export function ConflictNotices() {
  const { db } = useDemo();
  const [notices, setNotices] = useState<Notice[]>([]);
  useEffect(() => {
    let next = 0;
    return db.onConflict((conflict) => setNotices((shown) => [{ ...conflict, id: next++ }, ...shown].slice(0, 5)));
  }, [db]);
  if (notices.length === 0) return null;
  return (
    <section aria-label="Conflicts">
      {notices.map((notice) => (
        <div key={notice.id} className="notice" role="status" data-testid="conflict-notice" data-key={String(notice.key)} data-outcome={notice.outcome}>
          <strong>Conflict</strong> on{" "}
          <code>
            {notice.collection}/{String(notice.key).slice(0, 8)}
          </code>{" "}
          (found by {notice.source}, {notice.strategy}): {KEPT[notice.outcome]}. Yours: {title(notice.local)}; theirs: {title(notice.remote)}
          {notice.value && <> → now {title(notice.value)}</>}.{" "}
          <button type="button" className="link" onClick={() => setNotices((shown) => shown.filter((n) => n.id !== notice.id))}>
            dismiss
          </button>
        </div>
      ))}
    </section>
  );
}

// "Work offline" pauses this tab's sync (db.pauseSync(): nothing is pushed or pulled, writes keep
// queueing; it is not the browser going offline). "Flaky server" switches the reference server's
// fault injection on and off. "Sync now" pushes at once (db.sync()).
import { useState } from "react";
import { useSyncStatus } from "wharf/react";
import { useActions } from "../actions";
import { useDemo } from "../demoContext";
import { setServerFaults, useServerFaults } from "../serverFaults";

export function SyncControls() {
  return (
    <section className="controls card" aria-label="Sync controls">
      <WorkOfflineToggle />
      <FlakyServerToggle />
      <SyncNowButton />
    </section>
  );
}

function WorkOfflineToggle() {
  const { db } = useDemo();
  const [paused, setPaused] = useState(() => db.syncStatus?.state === "paused");
  const toggle = (next: boolean) => {
    if (next) db.pauseSync();
    else db.resumeSync();
    setPaused(next);
  };
  return (
    <label className="toggle" title="Stops this tab's pushes and pulls; edits keep queueing in the outbox. Another open tab of the app would take over syncing.">
      <input type="checkbox" data-testid="offline-toggle" checked={paused} onChange={(e) => toggle(e.target.checked)} />
      Work offline (pause sync)
    </label>
  );
}

function FlakyServerToggle() {
  const { availability, enabled, error } = useServerFaults();
  const missing = availability === "missing" || availability === "unreachable";
  return (
    <label
      className="toggle"
      title="The reference server's fault injection: some pushes fail, are slow or lose their answer."
    >
      <input
        type="checkbox"
        data-testid="flaky-toggle"
        checked={enabled && !missing}
        disabled={availability !== "available"}
        onChange={(e) => void setServerFaults(e.target.checked)}
      />
      Flaky server (fault injection)
      {availability === "missing" && <small className="muted"> — this server runs without --faults</small>}
      {availability === "unreachable" && <small className="muted"> — server unreachable</small>}
      {error && <small className="error-text"> — {error}</small>}
    </label>
  );
}

function SyncNowButton() {
  const { db } = useDemo();
  const { run } = useActions();
  const status = useSyncStatus(db);
  return (
    <button type="button" data-testid="sync-now" disabled={status?.state === "syncing"} onClick={() => void run(() => db.sync())}>
      Sync now
    </button>
  );
}

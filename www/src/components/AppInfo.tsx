// Small print: the service worker, Background Sync, storage persistence, and an install button
// where the browser offers one.
import { useEffect, useState } from "react";
import { useBackgroundSyncAnswer } from "../backgroundSync";
import { useDemo } from "../demoContext";
import type { ServiceWorkerState } from "../useDatabase";

interface InstallPrompt extends Event {
  prompt(): Promise<void>;
}

export function AppInfo({ worker }: { worker: ServiceWorkerState }) {
  const backgroundSync = useBackgroundSyncAnswer();
  return (
    <footer className="info muted">
      <span data-testid="service-worker" data-state={worker.kind}>
        Service worker: {worker.kind === "unavailable" ? `unavailable (${worker.reason})` : worker.kind}
      </span>
      <span data-testid="background-sync">Background Sync: {backgroundSync}</span>
      <Persistence />
      <InstallButton />
    </footer>
  );
}

function Persistence() {
  const { db } = useDemo();
  const [persisted, setPersisted] = useState<boolean | null>(null);
  useEffect(() => {
    db.storage().then((info) => setPersisted(info.persisted), () => setPersisted(null));
  }, [db]);
  return <span>Storage: {persisted === null ? "…" : persisted ? "persistent" : "may be evicted"}</span>;
}

function InstallButton() {
  const [prompt, setPrompt] = useState<InstallPrompt | null>(null);
  useEffect(() => {
    const offer = (event: Event) => {
      event.preventDefault();
      setPrompt(event as InstallPrompt);
    };
    addEventListener("beforeinstallprompt", offer);
    return () => removeEventListener("beforeinstallprompt", offer);
  }, []);
  if (!prompt) return null;
  return (
    <button type="button" onClick={() => void prompt.prompt().then(() => setPrompt(null))}>
      Install app
    </button>
  );
}

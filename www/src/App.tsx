// The demo's layout. Each panel is a small component reading Wharf through the wharf/react hooks.
import type { ReactNode } from "react";
import { ActionsProvider, ErrorBanner } from "./actions";
import { AddTodo } from "./components/AddTodo";
import { AppInfo } from "./components/AppInfo";
import { ConflictNotices } from "./components/ConflictNotices";
import { DeadLetterPanel } from "./components/DeadLetterPanel";
import { OutboxPanel } from "./components/OutboxPanel";
import { StatusBadge } from "./components/StatusBadge";
import { SyncControls } from "./components/SyncControls";
import { TodoList } from "./components/TodoList";
import { DemoContext } from "./demoContext";
import { useDatabase } from "./useDatabase";

export function App() {
  const { demo, error, worker } = useDatabase();
  if (error) return <Shell><OpenFailed error={error} /></Shell>;
  if (!demo) return <Shell><p className="muted">Opening the database…</p></Shell>;
  return (
    <DemoContext.Provider value={demo}>
      <ActionsProvider>
        <Shell badge={<StatusBadge />} ready>
          <SyncControls />
          <ConflictNotices />
          <ErrorBanner />
          <section className="card" aria-labelledby="todos-heading">
            <h2 id="todos-heading">Todos</h2>
            <AddTodo />
            <TodoList />
          </section>
          <DeadLetterPanel />
          <OutboxPanel />
          <AppInfo worker={worker} />
        </Shell>
      </ActionsProvider>
    </DemoContext.Provider>
  );
}

function Shell({ badge, ready = false, children }: { badge?: ReactNode; ready?: boolean; children: ReactNode }) {
  return (
    <main data-ready={ready ? "true" : "false"} data-testid="app">
      <header className="top">
        <h1>
          <img src="/icons/icon-192.png" alt="" width="32" height="32" /> Wharf todos
        </h1>
        {badge}
      </header>
      {children}
    </main>
  );
}

function OpenFailed({ error }: { error: unknown }) {
  const text = error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error);
  return (
    <p className="error" role="alert" data-testid="open-error">
      Could not open the database. {text}
    </p>
  );
}

// User actions go through `run`, so a failed write (a WharfError) is shown in the error banner
// with its code instead of becoming an unhandled rejection; the next successful action clears it.
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { isWharfError } from "wharf";

export interface ShownError {
  code: string;
  message: string;
}

interface Actions {
  run(action: () => Promise<unknown>): Promise<boolean>;
  error: ShownError | null;
  dismiss(): void;
}

const ActionsContext = createContext<Actions | null>(null);

function describe(error: unknown): ShownError {
  if (isWharfError(error)) return { code: error.code, message: error.message };
  if (error instanceof Error) return { code: error.name, message: error.message };
  return { code: "Error", message: String(error) };
}

export function ActionsProvider({ children }: { children: ReactNode }) {
  const [error, setError] = useState<ShownError | null>(null);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    try {
      await action();
      setError(null);
      return true;
    } catch (failure) {
      setError(describe(failure));
      return false;
    }
  }, []);
  const dismiss = useCallback(() => setError(null), []);
  const value = useMemo(() => ({ run, error, dismiss }), [run, error, dismiss]);
  return <ActionsContext.Provider value={value}>{children}</ActionsContext.Provider>;
}

export function useActions(): Actions {
  const actions = useContext(ActionsContext);
  if (!actions) throw new Error("useActions outside ActionsProvider");
  return actions;
}

export function ErrorBanner() {
  const { error, dismiss } = useActions();
  if (!error) return null;
  return (
    <p className="error" role="alert" data-testid="error" data-code={error.code}>
      {error.code}: {error.message}{" "}
      <button type="button" className="link" onClick={dismiss}>
        dismiss
      </button>
    </p>
  );
}

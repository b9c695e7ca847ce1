import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../api";

export type Load<T> =
  | { state: "loading"; data?: T }
  | { state: "error"; error: Error; data?: T }
  | { state: "ready"; data: T };

/** Loads ``fetcher()`` when ``deps`` change; ``reload`` runs it again. */
export function useLoad<T>(fetcher: () => Promise<T>, deps: unknown[]): [Load<T>, () => void] {
  const [load, setLoad] = useState<Load<T>>({ state: "loading" });
  const [tick, setTick] = useState(0);
  const current = useRef(0);
  useEffect(() => {
    const id = ++current.current;
    setLoad((prev) => ({ state: "loading", data: prev.data }));
    fetcher().then(
      (data) => { if (id === current.current) setLoad({ state: "ready", data }); },
      (error: Error) => { if (id === current.current) setLoad({ state: "error", error }); },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return [load, reload];
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {what}…
    </div>
  );
}

export function ErrorState({ error, retry }: { error: Error; retry?: () => void }) {
  const status = error instanceof ApiError ? error.status : null;
  return (
    <div className="state state-error" role="alert">
      <strong>{status === 503 ? "A service is unavailable" : "Something went wrong"}</strong>
      <span>{error.message}</span>
      {retry && <button type="button" onClick={retry}>Try again</button>}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state state-empty">{children}</div>;
}

/** Loading, error and empty states around ``children(data)``. */
export function Loaded<T>({ load, retry, empty, isEmpty, children }: {
  load: Load<T>;
  retry?: () => void;
  empty?: ReactNode;
  isEmpty?: (data: T) => boolean;
  children: (data: T) => ReactNode;
}) {
  if (load.state === "error") return <ErrorState error={load.error} retry={retry} />;
  if (load.state === "loading" && load.data === undefined) return <Loading />;
  const data = load.data as T;
  if (isEmpty && isEmpty(data)) return <Empty>{empty ?? "Nothing here yet."}</Empty>;
  return <>{children(data)}</>;
}

export function Panel({ title, actions, children, wide }: {
  title: string; actions?: ReactNode; children: ReactNode; wide?: boolean;
}) {
  return (
    <section className={`panel${wide ? " panel-wide" : ""}`} aria-label={title}>
      <header className="panel-head">
        <h2>{title}</h2>
        {actions && <div className="panel-actions">{actions}</div>}
      </header>
      <div className="panel-body">{children}</div>
    </section>
  );
}

/** Cursor pagination: the services answer next_cursor; the pager keeps the way back. */
export function usePager() {
  const [stack, setStack] = useState<string[]>([]);
  const cursor = stack.length ? stack[stack.length - 1] : undefined;
  return {
    cursor,
    page: stack.length + 1,
    next: (c: string) => setStack((s) => [...s, c]),
    prev: () => setStack((s) => s.slice(0, -1)),
    reset: () => setStack([]),
  };
}

export function Pager({ page, nextCursor, onNext, onPrev }: {
  page: number; nextCursor: string | null | undefined; onNext: (c: string) => void;
  onPrev: () => void;
}) {
  return (
    <nav className="pager" aria-label="pages">
      <button type="button" onClick={onPrev} disabled={page <= 1}>‹ Previous</button>
      <span>Page {page}</span>
      <button type="button" onClick={() => nextCursor && onNext(nextCursor)}
              disabled={!nextCursor}>Next ›</button>
    </nav>
  );
}

export function Badge({ tone, children }: { tone: "good" | "bad" | "warn" | "neutral";
                                             children: ReactNode }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

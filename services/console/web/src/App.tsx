import { lazy, Suspense, useCallback, useEffect, useState } from "react";
import { currentSession, onUnauthorised, signOut, type Session } from "./api";
import { ErrorState, Loading } from "./components/ui";
import SignIn from "./pages/SignIn";

const Overview = lazy(() => import("./pages/Overview"));
const Inventory = lazy(() => import("./pages/Inventory"));
const Pricing = lazy(() => import("./pages/Pricing"));
const Risk = lazy(() => import("./pages/Risk"));
const Orders = lazy(() => import("./pages/Orders"));
const Customers = lazy(() => import("./pages/Customers"));
const Support = lazy(() => import("./pages/Support"));

export const PAGES = [
  { path: "/", label: "Overview", page: Overview },
  { path: "/inventory", label: "Inventory", page: Inventory },
  { path: "/pricing", label: "Pricing", page: Pricing },
  { path: "/risk", label: "Risk", page: Risk },
  { path: "/orders", label: "Orders & returns", page: Orders },
  { path: "/customers", label: "Customers", page: Customers },
  { path: "/support", label: "Support", page: Support },
] as const;

function usePath(): [string, (to: string) => void] {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const back = () => setPath(window.location.pathname);
    window.addEventListener("popstate", back);
    return () => window.removeEventListener("popstate", back);
  }, []);
  const go = useCallback((to: string) => {
    window.history.pushState(null, "", to);
    setPath(to);
  }, []);
  return [path, go];
}

export default function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<Error | null>(null);
  const [path, go] = usePath();
  const refresh = useCallback(() => {
    currentSession().then(setSession, (e: Error) => setError(e));
  }, []);
  useEffect(() => {
    refresh();
    onUnauthorised(() => setSession(null));
  }, [refresh]);

  if (error) return <ErrorState error={error} retry={() => { setError(null); refresh(); }} />;
  if (session === undefined) return <Loading what="Opening the console" />;
  if (session === null) return <SignIn onSignedIn={refresh} />;

  const current = PAGES.find((p) => p.path === path) ?? PAGES[0];
  const Page = current.page;
  return (
    <div className="shell">
      <nav className="sidebar" aria-label="pages">
        <div className="brand">ecomops</div>
        <ul>
          {PAGES.map((p) => (
            <li key={p.path}>
              <a href={p.path} aria-current={p === current ? "page" : undefined}
                 onClick={(e) => { e.preventDefault(); go(p.path); }}>{p.label}</a>
            </li>
          ))}
        </ul>
        <div className="who">
          <span>{session.subject}</span>
          <button type="button" className="secondary"
                  onClick={() => signOut().then(() => setSession(null), (e: Error) => setError(e))}>
            Sign out
          </button>
        </div>
      </nav>
      <main className="content">
        <Suspense fallback={<Loading />}>
          <Page key={current.path} />
        </Suspense>
      </main>
    </div>
  );
}

import { useState, type FormEvent } from "react";
import { ApiError, signIn } from "../api";

export default function SignIn({ onSignedIn, oidc }: { onSignedIn: () => void; oidc?: boolean }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await signIn(token);
      setToken("");
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 403
        ? "This token's role may not use the console: it needs the ops role."
        : err instanceof ApiError && err.status === 401
          ? `The token was not accepted: ${err.message}`
          : String(err instanceof Error ? err.message : err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <form onSubmit={submit} aria-label="sign in">
        <h1>ecomops console</h1>
        <p>Paste a bearer token with the <b>ops</b> role. On a local stack:
          <code>.venv/bin/ecomops token --sub you --role ops</code></p>
        <label htmlFor="token">Token</label>
        <textarea id="token" name="token" rows={4} value={token} required autoComplete="off"
                  spellCheck={false} onChange={(e) => setToken(e.target.value)} />
        <button type="submit" disabled={busy || !token.trim()}>Sign in</button>
        {oidc && <a className="button secondary" href="/api/oidc/login">Sign in with your company account</a>}
        {error && <p className="error" role="alert">{error}</p>}
      </form>
    </main>
  );
}

// The console's calls of its BFF: same-origin, the session cookie sent by the browser, the
// CSRF token on every change, problem documents turned into errors a page can show.

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
}

export class ApiError extends Error {
  status: number;
  problem: Problem;
  constructor(status: number, problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

let csrfToken = "";

export function setCsrf(token: string): void {
  csrfToken = token;
}

function readCookie(name: string): string {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

let unauthorised: (() => void) | null = null;
export function onUnauthorised(handler: () => void): void {
  unauthorised = handler;
}

export async function call<T>(method: string, path: string, body?: unknown,
                              headers: Record<string, string> = {}): Promise<T> {
  const send: Record<string, string> = { Accept: "application/json", ...headers };
  if (method !== "GET") {
    send["X-CSRF-Token"] = csrfToken || readCookie("ecomops_console_csrf");
  }
  if (body !== undefined) send["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers: send, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 204) return undefined as T;
  let parsed: unknown = null;
  const text = await resp.text();
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { title: text.slice(0, 200) };
  }
  if (!resp.ok) {
    if (resp.status === 401 && unauthorised && !path.startsWith("/api/session")) unauthorised();
    throw new ApiError(resp.status, (parsed as Problem) ?? {});
  }
  return parsed as T;
}

export const get = <T>(path: string) => call<T>("GET", path);

/** A service's own endpoint through the BFF: svc("risk", "/v1/reviews", {status: "open"}). */
export function svc(service: string, path: string,
                    params: Record<string, string | number | undefined | null> = {}): string {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") query.set(k, String(v));
  }
  const qs = query.toString();
  return `/api/services/${service}${path}${qs ? `?${qs}` : ""}`;
}

export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}

export interface Session {
  signed_in: boolean;
  subject: string;
  role: string;
  expires_at: string | null;
  csrf_token: string;
  oidc: boolean;
}

export async function signIn(token: string): Promise<void> {
  const resp = await fetch("/api/session", {
    method: "POST", credentials: "same-origin",
    headers: { Authorization: `Bearer ${token.trim()}` },
  });
  if (resp.status !== 204) {
    let problem: Problem = {};
    try {
      problem = (await resp.json()) as Problem;
    } catch {
      problem = { title: `HTTP ${resp.status}` };
    }
    throw new ApiError(resp.status, problem);
  }
}

export async function currentSession(): Promise<Session | null> {
  try {
    const session = await get<Session>("/api/session");
    if (!session.signed_in) return null;
    setCsrf(session.csrf_token);
    return session;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return null;
    throw err;
  }
}

export async function signOut(): Promise<void> {
  await call<void>("DELETE", "/api/session");
  setCsrf("");
}

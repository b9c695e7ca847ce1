import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { setCsrf } from "../api";
import Customers, { churnShare } from "./Customers";
import { projection, stockState, type Suggestion } from "./Inventory";
import { OverviewBody, type OverviewData } from "./Overview";
import Risk from "./Risk";
import SignIn from "./SignIn";
import Support, { formatDuration, overdue, queueByTier, type Ticket } from "./Support";

afterEach(() => { cleanup(); vi.unstubAllGlobals(); });

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

const kpi = (value: unknown, unit = "count") => ({ value, previous: value, unit, source: "order", reason: null });

describe("Overview", () => {
  it("draws the tiles, a warning for an unavailable service and the funnel", () => {
    const data = {
      from: "2026-11-01T00:00:00+00:00", to: "2026-11-03T00:00:00+00:00", bucket: "day",
      previous: { from: "", to: "" },
      kpis: { orders: kpi(12), review_rate: { value: null, previous: null, unit: "rate", source: "risk",
              reason: "risk service: unreachable (ConnectError)" } },
      funnel: { steps: [{ step: "view", count: 100, rate: null }, { step: "cart", count: 20, rate: 0.2 }],
                previous_steps: null, reason: null },
      series: [{ from: "2026-11-01T00:00:00+00:00", to: "", gmv: [{ currency: "EUR", amount_minor: 500 }],
                 orders: 3, conversion_rate: 0.05 }],
      unavailable: { risk: "risk service: unreachable (ConnectError)" },
    } as unknown as OverviewData;
    render(<OverviewBody data={data} />);
    expect(screen.getByText("Orders")).toBeTruthy();
    expect(screen.getByRole("status").textContent).toContain("risk (risk service: unreachable");
    expect(screen.getByText(/20\.0 % of the step before/)).toBeTruthy();
    expect(screen.getByTestId("chart-gmv")).toBeTruthy();
  });
});

describe("Inventory", () => {
  const s = { sku: "A", warehouse: "W", available: 10, reorder_point: 12, safety_stock: 4,
              forecast_daily_demand: 2 } as Suggestion;
  it("classifies stock and projects it at the forecast demand", () => {
    expect(stockState(s)).toBe("low");
    expect(stockState({ ...s, available: 0 })).toBe("out");
    expect(stockState({ ...s, available: 50 })).toBe("ok");
    const p = projection(s, 7);
    expect(p[0].projected).toBe(10);
    expect(p[3].projected).toBe(4);
    expect(p[7].projected).toBe(0);
  });
});

describe("Customers", () => {
  it("computes the churn-risk share and renders the segments", async () => {
    const data = { total: 10, counts: [{ segment: "champions", customers: 6 }, { segment: "at_risk", customers: 3 },
                                       { segment: "lost", customers: 1 }] };
    expect(churnShare(data)).toBeCloseTo(0.4);
    vi.stubGlobal("fetch", vi.fn(async () => json(data)));
    render(<Customers />);
    expect(await screen.findByText("Churn risk: 40.0 %")).toBeTruthy();
  });
  it("shows the empty state", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ total: 0, counts: [] })));
    render(<Customers />);
    expect(await screen.findByText(/No customers segmented yet/)).toBeTruthy();
  });
});

describe("Risk", () => {
  it("approves a review with the CSRF token", async () => {
    const review = { review_id: "rv-1", order_id: "o-1", customer_id: "c-1", status: "open", decision: null,
                     score: "0.5", amount_minor: 2500, currency: "EUR", created_at: "2026-11-01T10:00:00Z",
                     reasons: [{ code: "blocklist", detail: "device blocked", weight: "0.5" }] };
    const calls: [string, RequestInit | undefined][] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string, init?: RequestInit) => {
      calls.push([url, init]);
      if (url.includes("/decision")) return json({ ...review, status: "resolved" });
      if (url.startsWith("/api/services/risk/v1/reviews")) return json({ items: [review], next_cursor: null });
      if (url.startsWith("/api/services/risk/v1/rules")) {
        return json({ version: 3, review_threshold: "0.3", reject_threshold: "0.8", model_weight: "0",
                      created_by: "ops", created_at: null, rules: [] });
      }
      return json({ points: [] });
    }));
    setCsrf("n.mac");
    render(<Risk />);
    fireEvent.click(await screen.findByText("Approve"));
    await waitFor(() => expect(screen.getByText("Order o-1: approved")).toBeTruthy());
    const [url, init] = calls.find(([u]) => u.includes("/decision"))!;
    expect(url).toBe("/api/services/risk/v1/reviews/rv-1/decision");
    expect(init?.method).toBe("POST");
    expect((init?.headers as Record<string, string>)["X-CSRF-Token"]).toBe("n.mac");
    expect(JSON.parse(String(init?.body))).toMatchObject({ decision: "approve" });
    expect(screen.getByText("blocklist: device blocked")).toBeTruthy();
  });
});

describe("SignIn", () => {
  it("explains a refused role", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ title: "Forbidden", status: 403 }, 403)));
    const done = vi.fn();
    render(<SignIn onSignedIn={done} />);
    fireEvent.change(screen.getByLabelText("Token"), { target: { value: "abc" } });
    fireEvent.click(screen.getByText("Sign in"));
    expect(await screen.findByText(/needs the ops role/)).toBeTruthy();
    expect(done).not.toHaveBeenCalled();
  });
  it("signs in with the pasted token as a bearer header", async () => {
    const f = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal("fetch", f);
    const done = vi.fn();
    render(<SignIn onSignedIn={done} />);
    fireEvent.change(screen.getByLabelText("Token"), { target: { value: " tok.en \n" } });
    fireEvent.click(screen.getByText("Sign in"));
    await waitFor(() => expect(done).toHaveBeenCalledOnce());
    const init = (f.mock.calls[0] as unknown as [string, RequestInit])[1];
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer tok.en");
  });
});

describe("Support", () => {
  const ticket = (over: Partial<Ticket>): Ticket => ({
    ticket_id: "t-1", customer_id: "c-1", order_id: null, category: "delivery", subject: "Late",
    language: "en", status: "open", tier: 1, priority: "normal", sla_due_at: null,
    created_at: "2026-12-01T10:00:00Z", first_response_at: null, sla_breaches: 0, reopened: 0,
    order_context_missing: false, suggested_articles: [], ...over,
  });
  it("reads durations and counts open work per tier", () => {
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(5400)).toBe("1.5 h");
    expect(formatDuration(null)).toBe("—");
    const rows = queueByTier([ticket({ tier: 1 }), ticket({ tier: 1, status: "escalated" }),
                              ticket({ tier: 2, status: "resolved" }), ticket({ tier: 3 })]);
    expect(rows).toEqual([{ tier: "tier 1", open: 1, escalated: 1 }, { tier: "tier 2" },
                          { tier: "tier 3", open: 1 }]);
    const now = new Date("2026-12-02T00:00:00Z");
    expect(overdue(ticket({ sla_due_at: "2026-12-01T12:00:00Z" }), now)).toBe(true);
    expect(overdue(ticket({ sla_due_at: "2026-12-01T12:00:00Z", status: "resolved" }), now)).toBe(false);
  });
  it("renders the service KPIs and the queue", async () => {
    const kpis = { tickets_opened: 3, first_response_p50_seconds: 120, first_response_p90_seconds: 7200,
                   resolution_p50_seconds: null, resolution_p90_seconds: null, sla_breach_rate: 0.25,
                   auto_answer_rate: 0.5, reopen_rate: 0, csat_average: 4.5, nps: 50, ratings: 2,
                   contact_rate_per_100_orders: 1.5 };
    vi.stubGlobal("fetch", vi.fn(async (url: string) =>
      json(url.includes("/kpis") ? kpis : { items: [ticket({ subject: "Parcel late" })], next_cursor: null })));
    render(<Support />);
    expect(await screen.findByText("2.0 min / 2.0 h")).toBeTruthy();
    expect(await screen.findByText("Parcel late")).toBeTruthy();
  });
});

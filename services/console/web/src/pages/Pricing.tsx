import { useState } from "react";
import {
  Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis,
} from "recharts";
import { ApiError, call, get, svc } from "../api";
import { Badge, Loaded, Pager, Panel, useLoad, usePager } from "../components/ui";
import { formatDate, formatMoney, formatRate, fromMinor } from "../format";

export interface PriceSuggestion {
  sku: string; currency: string; current_price_minor: number; suggested_price_minor: number;
  floor_price_minor: number; current_margin: string; suggested_margin: string;
  velocity_per_day: string; stock_available: number | null; days_of_cover: string | null;
  competitor_min_price_minor: number | null; reasons: string[];
}
interface Promotion {
  promotion_id: string; name: string; kind: string; value: unknown; coupon_code: string | null;
  usage_limit: number | null; used_count: number; active: boolean; starts_at: string | null;
  ends_at: string | null; currency: string | null;
}
interface Page<T> { items: T[]; next_cursor: string | null }

const DISMISSED = "ecomops-console-dismissed-price-suggestions";

function dismissedSet(): Set<string> {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(DISMISSED) ?? "[]") as string[]);
  } catch {
    return new Set();
  }
}

export const suggestionKey = (s: PriceSuggestion) =>
  `${s.sku}/${s.currency}/${s.current_price_minor}/${s.suggested_price_minor}`;

export default function Pricing() {
  return (
    <div className="page">
      <div className="toolbar"><h1>Pricing</h1></div>
      <div className="grid">
        <Suggestions />
        <Promotions />
      </div>
    </div>
  );
}

function Suggestions() {
  const pager = usePager();
  const [dismissed, setDismissed] = useState(dismissedSet);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState("");
  const [load, reload] = useLoad(
    () => get<Page<PriceSuggestion>>(svc("pricing", "/v1/pricing/suggestions",
                                         { limit: 20, cursor: pager.cursor })), [pager.cursor]);
  const accept = async (s: PriceSuggestion) => {
    setBusy(suggestionKey(s));
    try {
      await call("POST", `/api/pricing/suggestions/${encodeURIComponent(s.sku)}/accept`,
                 { currency: s.currency, suggested_price_minor: s.suggested_price_minor });
      setMessage({ ok: true, text: `${s.sku}: price set to ${formatMoney(s.suggested_price_minor, s.currency)}` });
      reload();
    } catch (err) {
      setMessage({ ok: false, text: `${s.sku}: ${err instanceof ApiError ? err.message : String(err)}` });
    } finally {
      setBusy("");
    }
  };
  const dismiss = (s: PriceSuggestion) => {
    const next = new Set(dismissed).add(suggestionKey(s));
    sessionStorage.setItem(DISMISSED, JSON.stringify([...next]));
    setDismissed(next);
  };
  return (
    <Panel title="Price suggestions" wide>
      {message && <p className={message.ok ? "ok" : "error"} role="status">{message.text}</p>}
      <Loaded load={load} retry={reload}
              isEmpty={(d) => d.items.filter((s) => !dismissed.has(suggestionKey(s))).length === 0}
              empty="No price suggestions: every price is where demand, stock and competitors put it.">
        {(data) => {
          const rows = data.items.filter((s) => !dismissed.has(suggestionKey(s)));
          const currency = rows[0]?.currency ?? "EUR";
          const chart = rows.filter((s) => s.currency === currency).slice(0, 12).map((s) => ({
            sku: s.sku, current: fromMinor(s.current_price_minor, currency),
            suggested: fromMinor(s.suggested_price_minor, currency),
            floor: fromMinor(s.floor_price_minor, currency),
          }));
          return (
            <>
              <div className="chart" data-testid="chart-prices">
                <ResponsiveContainer width="100%" height={220}>
                  <BarChart data={chart}>
                    <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                    <XAxis dataKey="sku" hide /><YAxis unit={` ${currency}`} width={80} />
                    <Tooltip /><Legend />
                    <Bar isAnimationActive={false} dataKey="floor" name="margin floor" fill="#e8c3bd" />
                    <Bar isAnimationActive={false} dataKey="current" name="current" fill="#9db4d6" />
                    <Bar isAnimationActive={false} dataKey="suggested" name="suggested" fill="#1f5fa8" />
                  </BarChart>
                </ResponsiveContainer>
              </div>
              <table className="table">
                <thead><tr><th>SKU</th><th>Current</th><th>Suggested</th><th>Floor</th>
                  <th>Margin now → then</th><th>Sales/day</th><th>Why</th><th /></tr></thead>
                <tbody>
                  {rows.map((s) => {
                    const key = suggestionKey(s);
                    const same = s.current_price_minor === s.suggested_price_minor;
                    return (
                      <tr key={key} data-sku={s.sku}>
                        <td>{s.sku}</td>
                        <td className="num">{formatMoney(s.current_price_minor, s.currency)}</td>
                        <td className="num"><b>{formatMoney(s.suggested_price_minor, s.currency)}</b>
                          {" "}{s.suggested_price_minor > s.current_price_minor ? <Badge tone="good">up</Badge>
                            : same ? <Badge tone="neutral">keep</Badge> : <Badge tone="warn">down</Badge>}</td>
                        <td className="num">{formatMoney(s.floor_price_minor, s.currency)}</td>
                        <td className="num">{formatRate(s.current_margin)} → {formatRate(s.suggested_margin)}</td>
                        <td className="num">{Number(s.velocity_per_day).toFixed(2)}</td>
                        <td className="reasons">{s.reasons.join("; ")}</td>
                        <td className="actions">
                          <button type="button" disabled={same || busy === key}
                                  onClick={() => accept(s)}>Accept</button>
                          <button type="button" className="secondary" onClick={() => dismiss(s)}>Dismiss</button>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
              <Pager page={pager.page} nextCursor={data.next_cursor} onNext={pager.next} onPrev={pager.prev} />
            </>
          );
        }}
      </Loaded>
    </Panel>
  );
}

function Promotions() {
  const pager = usePager();
  const [load, reload] = useLoad(
    () => get<Page<Promotion>>(svc("pricing", "/v1/promotions", { limit: 20, cursor: pager.cursor })),
    [pager.cursor]);
  return (
    <Panel title="Promotions and coupon usage" wide>
      <Loaded load={load} retry={reload} isEmpty={(d) => d.items.length === 0}
              empty="No promotions yet.">
        {(data) => (
          <>
            <div className="chart" data-testid="chart-coupons">
              <ResponsiveContainer width="100%" height={200}>
                <BarChart data={data.items.filter((p) => p.coupon_code).map((p) => ({
                  code: p.coupon_code, used: p.used_count,
                  left: p.usage_limit === null ? 0 : Math.max(0, p.usage_limit - p.used_count) }))}>
                  <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                  <XAxis dataKey="code" /><YAxis allowDecimals={false} /><Tooltip /><Legend />
                  <Bar isAnimationActive={false} dataKey="used" stackId="u" name="redeemed" fill="#1f5fa8" />
                  <Bar isAnimationActive={false} dataKey="left" stackId="u" name="left of the limit" fill="#c9d3e2" />
                </BarChart>
              </ResponsiveContainer>
            </div>
            <table className="table">
              <thead><tr><th>Name</th><th>Kind</th><th>Coupon</th><th>Used</th><th>Runs</th>
                <th>State</th></tr></thead>
              <tbody>
                {data.items.map((p) => (
                  <tr key={p.promotion_id}>
                    <td>{p.name}</td><td>{p.kind} {typeof p.value === "object" ? "" : String(p.value)}</td>
                    <td>{p.coupon_code ?? "—"}</td>
                    <td className="num">{p.used_count}{p.usage_limit !== null && ` / ${p.usage_limit}`}</td>
                    <td>{formatDate(p.starts_at)} – {formatDate(p.ends_at)}</td>
                    <td>{p.active ? <Badge tone="good">active</Badge> : <Badge tone="neutral">inactive</Badge>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <Pager page={pager.page} nextCursor={data.next_cursor} onNext={pager.next} onPrev={pager.prev} />
          </>
        )}
      </Loaded>
    </Panel>
  );
}

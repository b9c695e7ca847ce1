import { useState } from "react";
import {
  CartesianGrid, ComposedChart, Bar, Legend, Line, ResponsiveContainer, Tooltip, XAxis, YAxis,
} from "recharts";
import { ApiError, call, get, svc } from "../api";
import { Badge, Empty, Loaded, Pager, Panel, useLoad, usePager } from "../components/ui";
import { formatDate, formatMoney, formatRate, shortDay } from "../format";

export interface Review {
  review_id: string; order_id: string; customer_id: string; status: string;
  decision: string | null; score: string; amount_minor: number; currency: string;
  created_at: string; reasons: { code: string; detail: string; weight: string; shadow?: boolean }[];
}
interface Page<T> { items: T[]; next_cursor: string | null }
interface RiskPoint { from: string; assessments?: number; review_rate?: number; reject_rate?: number;
                      fraud_loss?: { currency: string; fraud_loss_rate: string }[]; reason?: string }
interface Rules { version: number; review_threshold: string; reject_threshold: string;
                  model_weight: string; created_by: string; created_at: string | null;
                  rules: { code: string; type: string; weight: string; shadow: boolean }[] }

export default function Risk() {
  return (
    <div className="page">
      <div className="toolbar"><h1>Risk</h1></div>
      <div className="grid">
        <Queue />
        <FraudOverTime />
        <RulesVersion />
      </div>
    </div>
  );
}

function Queue() {
  const pager = usePager();
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState("");
  const [load, reload] = useLoad(
    () => get<Page<Review>>(svc("risk", "/v1/reviews", { status: "open", limit: 20, cursor: pager.cursor })),
    [pager.cursor]);
  const decide = async (r: Review, decision: "approve" | "reject") => {
    setBusy(r.review_id);
    try {
      await call("POST", svc("risk", `/v1/reviews/${encodeURIComponent(r.review_id)}/decision`),
                 { decision, note: "decided in the console" });
      setMessage({ ok: true, text: `Order ${r.order_id}: ${decision === "approve" ? "approved" : "rejected"}` });
      reload();
    } catch (err) {
      setMessage({ ok: false, text: err instanceof ApiError ? err.message : String(err) });
    } finally {
      setBusy("");
    }
  };
  return (
    <Panel title="Review queue" wide>
      {message && <p className={message.ok ? "ok" : "error"} role="status">{message.text}</p>}
      <Loaded load={load} retry={reload} isEmpty={(d) => d.items.length === 0}
              empty="The review queue is empty.">
        {(data) => (
          <>
            <table className="table">
              <thead><tr><th>Order</th><th>Customer</th><th>Amount</th><th>Score</th>
                <th>Reasons</th><th>Waiting since</th><th /></tr></thead>
              <tbody>
                {data.items.map((r) => (
                  <tr key={r.review_id} data-order={r.order_id}>
                    <td>{r.order_id}</td><td>{r.customer_id}</td>
                    <td className="num">{formatMoney(r.amount_minor, r.currency)}</td>
                    <td className="num">{Number(r.score).toFixed(2)}</td>
                    <td className="reasons">{r.reasons.filter((x) => !x.shadow).map((x) => (
                      <Badge key={x.code} tone="warn">{x.code}: {x.detail}</Badge>))}</td>
                    <td>{formatDate(r.created_at)}</td>
                    <td className="actions">
                      <button type="button" disabled={busy === r.review_id}
                              onClick={() => decide(r, "approve")}>Approve</button>
                      <button type="button" className="danger" disabled={busy === r.review_id}
                              onClick={() => decide(r, "reject")}>Reject</button>
                    </td>
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

function FraudOverTime() {
  const [load, reload] = useLoad(() => {
    const to = new Date();
    const from = new Date(to.getTime() - 30 * 86_400_000);
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), bucket: "day" });
    return get<{ points: RiskPoint[] }>(`/api/risk/series?${q}`);
  }, []);
  return (
    <Panel title="Fraud KPIs, last 30 days" wide>
      <Loaded load={load} retry={reload}>
        {(data) => {
          const failed = data.points.find((p) => p.reason);
          if (failed) return <Empty>Unavailable: {failed.reason}</Empty>;
          const chart = data.points.map((p) => ({
            day: shortDay(p.from), assessments: p.assessments ?? 0,
            review: (p.review_rate ?? 0) * 100, reject: (p.reject_rate ?? 0) * 100,
            loss: p.fraud_loss?.length ? Number(p.fraud_loss[0].fraud_loss_rate) * 100 : 0,
          }));
          return (
            <div className="chart" data-testid="chart-fraud">
              <ResponsiveContainer width="100%" height={240}>
                <ComposedChart data={chart}>
                  <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                  <XAxis dataKey="day" />
                  <YAxis yAxisId="n" allowDecimals={false} />
                  <YAxis yAxisId="pct" orientation="right" unit=" %" />
                  <Tooltip /><Legend />
                  <Bar isAnimationActive={false} yAxisId="n" dataKey="assessments" name="assessments" fill="#c9d3e2" />
                  <Line isAnimationActive={false} yAxisId="pct" dataKey="review" name="review rate" stroke="#e0a030" dot={false} />
                  <Line isAnimationActive={false} yAxisId="pct" dataKey="reject" name="reject rate" stroke="#c0392b" dot={false} />
                  <Line isAnimationActive={false} yAxisId="pct" dataKey="loss" name="fraud loss rate" stroke="#6a1b9a" dot={false} />
                </ComposedChart>
              </ResponsiveContainer>
            </div>
          );
        }}
      </Loaded>
    </Panel>
  );
}

function RulesVersion() {
  const [load, reload] = useLoad(() => get<Rules>(svc("risk", "/v1/rules")), []);
  return (
    <Panel title="Rules in force">
      <Loaded load={load} retry={reload}>
        {(r) => (
          <div>
            <p><b>Version {r.version}</b> by {r.created_by}, {formatDate(r.created_at)}</p>
            <p>Review from score {r.review_threshold}, reject from {r.reject_threshold};
              model weight {formatRate(r.model_weight, 0)}.</p>
            <ul className="legend-list">
              {r.rules.map((rule) => (
                <li key={rule.code}>{rule.code} ({rule.type}) weight {rule.weight}
                  {rule.shadow && <> <Badge tone="neutral">shadow</Badge></>}</li>
              ))}
            </ul>
          </div>
        )}
      </Loaded>
    </Panel>
  );
}

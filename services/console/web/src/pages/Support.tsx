import { useState } from "react";
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { ApiError, call, get, svc } from "../api";
import { Badge, Empty, Loaded, Pager, Panel, useLoad, usePager } from "../components/ui";
import { formatCount, formatDate, formatMoney, formatRate } from "../format";

export interface Ticket {
  ticket_id: string; customer_id: string; order_id: string | null; category: string;
  subject: string; language: string; status: string; tier: number; priority: string;
  sla_due_at: string | null; created_at: string; first_response_at: string | null;
  sla_breaches: number; reopened: number; order_context_missing: boolean;
  suggested_articles: { article_id: string; title: string; score: number }[];
  messages?: { message_id: string; author_role: string; author: string; body: string; created_at: string }[];
  timeline?: { kind: string; status: string; tier: number; by: string; note: string; at: string }[];
  order?: { available: boolean; status: string | null; total_minor: number | null;
            currency: string | null; shipments: number } | null;
  compensation?: { kind: string; status: string; coupon_code: string | null; approved_by: string } | null;
  rating?: { csat: number; nps: number; comment: string } | null;
}
interface Page<T> { items: T[]; next_cursor: string | null }
export interface SupportKpis {
  tickets_opened: number; first_response_p50_seconds: number | null;
  first_response_p90_seconds: number | null; resolution_p50_seconds: number | null;
  resolution_p90_seconds: number | null; sla_breach_rate: number | null;
  auto_answer_rate: number | null; reopen_rate: number | null; csat_average: number | null;
  nps: number | null; ratings: number; contact_rate_per_100_orders: number | null;
}

const STATUSES = ["open", "auto_answered", "waiting_customer", "escalated", "resolved", "closed"];

/** Seconds as the largest whole unit a person reads at a glance: 95 → "1.6 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

/** Open work per tier, split by status: what the queue chart draws. */
export function queueByTier(tickets: Ticket[]): Record<string, number | string>[] {
  const rows = [1, 2, 3].map((tier) => ({ tier: `tier ${tier}` } as Record<string, number | string>));
  for (const t of tickets) {
    if (t.status === "resolved" || t.status === "closed") continue;
    const row = rows[t.tier - 1];
    if (row) row[t.status] = ((row[t.status] as number | undefined) ?? 0) + 1;
  }
  return rows;
}

export function overdue(t: Ticket, now: Date = new Date()): boolean {
  return !!t.sla_due_at && new Date(t.sla_due_at) < now && t.status !== "resolved" && t.status !== "closed";
}

export default function Support() {
  const [selected, setSelected] = useState<string | null>(null);
  return (
    <div className="page">
      <div className="toolbar"><h1>Support</h1></div>
      <div className="grid">
        <Kpis />
        <QueueChart />
        <Queue onOpen={setSelected} />
        {selected && <TicketDetail ticketId={selected} onClose={() => setSelected(null)} />}
      </div>
    </div>
  );
}

function Kpis() {
  const [load, reload] = useLoad(() => {
    const to = new Date();
    const from = new Date(to.getTime() - 30 * 86_400_000);
    return get<SupportKpis>(svc("support", "/v1/support/kpis", { from: from.toISOString(), to: to.toISOString() }));
  }, []);
  return (
    <Panel title="Service, last 30 days" wide>
      <Loaded load={load} retry={reload}>
        {(k) => (
          <div className="kpis" data-testid="support-kpis">
            {[
              ["Tickets opened", formatCount(k.tickets_opened)],
              ["First response p50 / p90", `${formatDuration(k.first_response_p50_seconds)} / ${formatDuration(k.first_response_p90_seconds)}`],
              ["Resolution p50 / p90", `${formatDuration(k.resolution_p50_seconds)} / ${formatDuration(k.resolution_p90_seconds)}`],
              ["SLA breach rate", k.sla_breach_rate === null ? "—" : formatRate(k.sla_breach_rate)],
              ["Answered automatically", k.auto_answer_rate === null ? "—" : formatRate(k.auto_answer_rate)],
              ["Reopened", k.reopen_rate === null ? "—" : formatRate(k.reopen_rate)],
              ["CSAT", k.csat_average === null ? "—" : `${k.csat_average.toFixed(2)} / 5 (${formatCount(k.ratings)})`],
              ["NPS", k.nps === null ? "—" : k.nps.toFixed(0)],
              ["Contacts per 100 orders", k.contact_rate_per_100_orders === null ? "—" : k.contact_rate_per_100_orders.toFixed(1)],
            ].map(([label, value]) => (
              <div className="kpi" key={label}>
                <div className="kpi-label">{label}</div>
                <div className="kpi-value">{value}</div>
              </div>
            ))}
          </div>
        )}
      </Loaded>
    </Panel>
  );
}

function QueueChart() {
  const [load, reload] = useLoad(() => get<Page<Ticket>>(svc("support", "/v1/tickets", { limit: 200 })), []);
  return (
    <Panel title="Open work by tier (oldest 200 tickets)" wide>
      <Loaded load={load} retry={reload} isEmpty={(d) => d.items.length === 0}
              empty="No tickets yet: customers open them from the storefront (POST /v1/tickets).">
        {(data) => (
          <div className="chart" data-testid="chart-support-queue">
            <ResponsiveContainer width="100%" height={220}>
              <BarChart data={queueByTier(data.items)}>
                <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                <XAxis dataKey="tier" /><YAxis allowDecimals={false} />
                <Tooltip /><Legend />
                <Bar isAnimationActive={false} dataKey="open" stackId="s" name="open" fill="#1f5fa8" />
                <Bar isAnimationActive={false} dataKey="escalated" stackId="s" name="escalated" fill="#c0392b" />
                <Bar isAnimationActive={false} dataKey="waiting_customer" stackId="s" name="waiting for customer" fill="#e0a030" />
                <Bar isAnimationActive={false} dataKey="auto_answered" stackId="s" name="answered automatically" fill="#2e8b57" />
              </BarChart>
            </ResponsiveContainer>
          </div>
        )}
      </Loaded>
    </Panel>
  );
}

function Queue({ onOpen }: { onOpen: (ticketId: string) => void }) {
  const pager = usePager();
  const [tier, setTier] = useState("");
  const [status, setStatus] = useState("");
  const [late, setLate] = useState(false);
  const [load, reload] = useLoad(
    () => get<Page<Ticket>>(svc("support", "/v1/tickets", {
      tier, status, overdue: late ? "true" : undefined, limit: 20, cursor: pager.cursor,
    })),
    [tier, status, late, pager.cursor]);
  const filter = (apply: () => void) => { pager.reset(); apply(); };
  return (
    <Panel title="Queue" wide actions={
      <div className="filters">
        <select aria-label="tier" value={tier} onChange={(e) => filter(() => setTier(e.target.value))}>
          <option value="">every tier</option>
          {[1, 2, 3].map((t) => <option key={t} value={t}>tier {t}</option>)}
        </select>
        <select aria-label="status" value={status} onChange={(e) => filter(() => setStatus(e.target.value))}>
          <option value="">every status</option>
          {STATUSES.map((s) => <option key={s} value={s}>{s.replace(/_/g, " ")}</option>)}
        </select>
        <label><input type="checkbox" checked={late}
                      onChange={(e) => filter(() => setLate(e.target.checked))} /> overdue only</label>
      </div>
    }>
      <Loaded load={load} retry={reload} isEmpty={(d) => d.items.length === 0}
              empty="No ticket matches these filters.">
        {(data) => (
          <>
            <table className="table">
              <thead><tr><th>Subject</th><th>Customer</th><th>Category</th><th>Status</th>
                <th>Tier</th><th>Priority</th><th>SLA due</th><th /></tr></thead>
              <tbody>
                {data.items.map((t) => (
                  <tr key={t.ticket_id} data-ticket={t.ticket_id}>
                    <td>{t.subject}</td><td>{t.customer_id}</td><td>{t.category}</td>
                    <td><Badge tone={t.status === "escalated" ? "bad" : t.status === "resolved" ? "good" : "neutral"}>
                      {t.status.replace(/_/g, " ")}</Badge></td>
                    <td className="num">{t.tier}</td><td>{t.priority}</td>
                    <td>{overdue(t) ? <Badge tone="bad">overdue {formatDate(t.sla_due_at)}</Badge>
                      : formatDate(t.sla_due_at)}</td>
                    <td className="actions">
                      <button type="button" className="secondary" onClick={() => onOpen(t.ticket_id)}>Open</button>
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

function TicketDetail({ ticketId, onClose }: { ticketId: string; onClose: () => void }) {
  const [load, reload] = useLoad(
    () => get<Ticket>(svc("support", `/v1/tickets/${encodeURIComponent(ticketId)}`)), [ticketId]);
  const [text, setText] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const act = async (action: string, body: Record<string, unknown>, done: string) => {
    setBusy(true);
    try {
      await call("POST", svc("support", `/v1/tickets/${encodeURIComponent(ticketId)}/${action}`), body);
      setMessage({ ok: true, text: done });
      setText("");
      reload();
    } catch (err) {
      setMessage({ ok: false, text: err instanceof ApiError ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Panel title="Ticket" wide actions={<button type="button" className="secondary" onClick={onClose}>Close</button>}>
      {message && <p className={message.ok ? "ok" : "error"} role="status">{message.text}</p>}
      <Loaded load={load} retry={reload}>
        {(t) => (
          <div className="ticket" data-testid="support-ticket">
            <h2>{t.subject}</h2>
            <p>{t.status.replace(/_/g, " ")} · tier {t.tier} · {t.priority} priority · SLA due {formatDate(t.sla_due_at)}
              {t.sla_breaches > 0 && <> · <Badge tone="bad">{t.sla_breaches} SLA breach(es)</Badge></>}</p>
            {t.order_id && (
              <p>Order {t.order_id}: {t.order?.available
                ? `${t.order.status}, ${formatMoney(t.order.total_minor, t.order.currency ?? "EUR")}, ${t.order.shipments} shipment(s)`
                : "the order service did not answer (context missing)"}</p>
            )}
            {t.suggested_articles.length > 0 && (
              <p className="hint">Suggested articles: {t.suggested_articles.map((a) =>
                `${a.title} (${a.score.toFixed(2)})`).join(" · ")}</p>
            )}
            {t.compensation && <p>Compensation: {t.compensation.kind} ({t.compensation.status})
              {t.compensation.coupon_code ? `, coupon ${t.compensation.coupon_code}` : ""}, approved by {t.compensation.approved_by}</p>}
            {t.rating && <p>Rated CSAT {t.rating.csat}/5, NPS {t.rating.nps}{t.rating.comment ? `: “${t.rating.comment}”` : ""}</p>}
            <ol className="thread">
              {(t.messages ?? []).map((m) => (
                <li key={m.message_id} className={`from-${m.author_role}`}>
                  <b>{m.author_role}</b> {formatDate(m.created_at)}<br />{m.body}
                </li>
              ))}
            </ol>
            {(t.messages ?? []).length === 0 && <Empty>No messages.</Empty>}
            <textarea aria-label="reply or note" value={text} maxLength={2000}
                      onChange={(e) => setText(e.target.value)} rows={3} />
            <div className="actions">
              <button type="button" disabled={busy || !text.trim()}
                      onClick={() => act("messages", { body: text }, "Reply sent")}>Reply</button>
              <button type="button" className="secondary" disabled={busy || !text.trim() || t.tier >= 3}
                      onClick={() => act("escalate", { note: text }, "Escalated")}>Escalate</button>
              <button type="button" className="secondary" disabled={busy || !text.trim() || t.tier <= 1}
                      onClick={() => act("deescalate", { note: text }, "De-escalated")}>De-escalate</button>
              <button type="button" disabled={busy || t.status === "resolved" || t.status === "closed"}
                      onClick={() => act("resolve", { note: text }, "Resolved")}>Resolve</button>
            </div>
            <details><summary>Timeline ({(t.timeline ?? []).length})</summary>
              <ul>{(t.timeline ?? []).map((e, i) => (
                <li key={i}>{formatDate(e.at)} {e.kind}: {e.status}, tier {e.tier} by {e.by}{e.note ? ` (${e.note})` : ""}</li>
              ))}</ul>
            </details>
          </div>
        )}
      </Loaded>
    </Panel>
  );
}

import { useState, type FormEvent } from "react";
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { ApiError, call, get, newIdempotencyKey, svc } from "../api";
import { Badge, Empty, ErrorState, Loaded, Loading, Pager, Panel, useLoad, usePager } from "../components/ui";
import { formatDate, formatMoney } from "../format";

interface Line { sku: string; quantity: number; unit_price_minor: number; total_minor: number;
                 returned_quantity: number }
export interface Order {
  order_id: string; customer_id: string; status: string; currency: string; total_minor: number;
  placed_at: string | null; lines: Line[];
  timeline: { status: string; at: string; actor: string | null; note: string | null }[];
}
interface ReturnView { return_id: string; order_id: string; status: string; reason: string;
                       lines: { sku: string; quantity: number }[]; refunded_minor: number;
                       currency: string; requested_at: string | null }
interface Page<T> { items: T[]; next_cursor: string | null }

const STATUSES = ["", "awaiting_payment", "in_review", "paid", "shipped", "delivered", "cancelled",
                  "partially_returned", "returned", "rejected"];

export function statusTone(status: string): "good" | "bad" | "warn" | "neutral" {
  if (["paid", "shipped", "delivered", "approved", "refunded", "received"].includes(status)) return "good";
  if (["cancelled", "rejected"].includes(status)) return "bad";
  if (["in_review", "awaiting_payment", "requested"].includes(status)) return "warn";
  return "neutral";
}

export default function Orders() {
  const pager = usePager();
  const [status, setStatus] = useState("");
  const [chosen, setChosen] = useState("");
  const [search, setSearch] = useState("");
  const [load, reload] = useLoad(
    () => get<Page<Order>>(svc("order", "/v1/orders", { status, limit: 20, cursor: pager.cursor })),
    [status, pager.cursor]);
  const find = (e: FormEvent) => { e.preventDefault(); setChosen(search.trim()); };
  return (
    <div className="page">
      <div className="toolbar">
        <h1>Orders and returns</h1>
        <form onSubmit={find} className="inline">
          <input aria-label="order id" placeholder="Find an order by id" value={search}
                 onChange={(e) => setSearch(e.target.value)} />
          <button type="submit">Find</button>
        </form>
      </div>
      <div className="grid">
        <Panel title="Orders" wide actions={
          <select aria-label="status" value={status} onChange={(e) => { setStatus(e.target.value); pager.reset(); }}>
            {STATUSES.map((s) => <option key={s} value={s}>{s || "any status"}</option>)}
          </select>}>
          <Loaded load={load} retry={reload} isEmpty={(d) => d.items.length === 0} empty="No orders.">
            {(data) => {
              const counts = new Map<string, number>();
              for (const o of data.items) counts.set(o.status, (counts.get(o.status) ?? 0) + 1);
              return (
                <>
                  <div className="chart" data-testid="chart-statuses">
                    <ResponsiveContainer width="100%" height={160}>
                      <BarChart data={[...counts].map(([s, n]) => ({ status: s, orders: n }))}>
                        <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                        <XAxis dataKey="status" /><YAxis allowDecimals={false} /><Tooltip />
                        <Bar isAnimationActive={false} dataKey="orders" name="orders on this page" fill="#1f5fa8" />
                      </BarChart>
                    </ResponsiveContainer>
                  </div>
                  <table className="table">
                    <thead><tr><th>Order</th><th>Customer</th><th>Status</th><th>Total</th><th>Placed</th></tr></thead>
                    <tbody>
                      {data.items.map((o) => (
                        <tr key={o.order_id} onClick={() => setChosen(o.order_id)} tabIndex={0}
                            className={chosen === o.order_id ? "selected" : ""}
                            onKeyDown={(e) => e.key === "Enter" && setChosen(o.order_id)}>
                          <td>{o.order_id}</td><td>{o.customer_id}</td>
                          <td><Badge tone={statusTone(o.status)}>{o.status}</Badge></td>
                          <td className="num">{formatMoney(o.total_minor, o.currency)}</td>
                          <td>{formatDate(o.placed_at)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                  <Pager page={pager.page} nextCursor={data.next_cursor} onNext={pager.next} onPrev={pager.prev} />
                </>
              );
            }}
          </Loaded>
        </Panel>
        <Panel title={chosen ? `Order ${chosen}` : "Order"}>
          {chosen ? <OrderDetail orderId={chosen} /> : <Empty>Find an order or choose one from the list.</Empty>}
        </Panel>
        <Returns />
      </div>
    </div>
  );
}

function OrderDetail({ orderId }: { orderId: string }) {
  const [load, reload] = useLoad(
    () => get<Order>(svc("order", `/v1/orders/${encodeURIComponent(orderId)}`)), [orderId]);
  return (
    <Loaded load={load} retry={reload}>
      {(o) => (
        <div>
          <p><Badge tone={statusTone(o.status)}>{o.status}</Badge> {formatMoney(o.total_minor, o.currency)} ·
            customer {o.customer_id}</p>
          <ul className="lines">
            {o.lines.map((l) => <li key={l.sku}>{l.quantity} × {l.sku} at {formatMoney(l.unit_price_minor, o.currency)}
              {l.returned_quantity > 0 && ` (${l.returned_quantity} returned)`}</li>)}
          </ul>
          <ol className="timeline" aria-label="timeline">
            {o.timeline.map((t, i) => (
              <li key={`${t.status}-${i}`}><b>{t.status}</b> {formatDate(t.at)}
                {t.actor && <span className="muted"> by {t.actor}</span>}
                {t.note && <span className="muted"> — {t.note}</span>}</li>
            ))}
          </ol>
        </div>
      )}
    </Loaded>
  );
}

function Returns() {
  const [returnId, setReturnId] = useState("");
  const [view, setView] = useState<ReturnView | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (what: () => Promise<ReturnView>) => {
    setBusy(true); setError(null);
    try { setView(await what()); } catch (err) { setError(err as Error); } finally { setBusy(false); }
  };
  const find = (e: FormEvent) => {
    e.preventDefault();
    void run(() => get<ReturnView>(svc("order", `/v1/returns/${encodeURIComponent(returnId.trim())}`)));
  };
  const act = (action: "approve" | "reject" | "receive") => view && run(() => call<ReturnView>(
    "POST", svc("order", `/v1/returns/${encodeURIComponent(view.return_id)}/${action}`),
    action === "receive" ? { lines: view.lines.map((l) => ({ sku: l.sku, quantity: l.quantity, resellable: true })) }
      : action === "reject" ? { note: "rejected in the console" } : {},
    action === "receive" ? { "Idempotency-Key": newIdempotencyKey() } : {}));
  return (
    <Panel title="Return">
      <form className="inline" onSubmit={find}>
        <input aria-label="return id" placeholder="Return id (RMA)" value={returnId}
               onChange={(e) => setReturnId(e.target.value)} required />
        <button type="submit" disabled={busy}>Open</button>
      </form>
      {busy && <Loading />}
      {error && <ErrorState error={error} />}
      {view && (
        <div>
          <p><Badge tone={statusTone(view.status)}>{view.status}</Badge> order {view.order_id} ·
            “{view.reason}”</p>
          <ul className="lines">{view.lines.map((l) => <li key={l.sku}>{l.quantity} × {l.sku}</li>)}</ul>
          {view.refunded_minor > 0 && <p>Refunded {formatMoney(view.refunded_minor, view.currency)}</p>}
          <div className="actions">
            <button type="button" disabled={busy || view.status !== "requested"} onClick={() => act("approve")}>Approve</button>
            <button type="button" className="danger" disabled={busy || view.status !== "requested"} onClick={() => act("reject")}>Reject</button>
            <button type="button" disabled={busy || view.status !== "approved"} onClick={() => act("receive")}>Receive (resellable)</button>
          </div>
        </div>
      )}
      {!view && !error && !busy && <Empty>Open a return by its id to approve or receive it.</Empty>}
      {error instanceof ApiError && error.status === 404 && <p className="hint">No such return.</p>}
    </Panel>
  );
}

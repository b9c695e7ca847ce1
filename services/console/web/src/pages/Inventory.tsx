import { useState, type FormEvent } from "react";
import {
  Bar, BarChart, CartesianGrid, Cell, Legend, Line, LineChart, Pie, PieChart, ReferenceLine,
  ResponsiveContainer, Tooltip, XAxis, YAxis,
} from "recharts";
import { ApiError, call, get, newIdempotencyKey, svc } from "../api";
import { Badge, Empty, Loaded, Pager, Panel, useLoad, usePager } from "../components/ui";
import { formatCount, formatMoney, formatRate, shortDay } from "../format";

export interface Suggestion {
  sku: string; warehouse: string; forecast_daily_demand: number; safety_stock: number;
  reorder_point: number; suggested_order_quantity: number; days_of_cover: number | null;
  abc_class: "A" | "B" | "C" | null; replenishment_mode: string; reason: string;
  on_hand: number; available: number; lead_time_days: number;
}
interface Page<T> { items: T[]; next_cursor: string | null }
interface LedgerEntry { delta: number; reason: string; warehouse: string; on_hand_after: number;
                        occurred_at: string; reference: string | null }
interface Abc { currency: string; window_days: number;
                items: { sku: string; revenue_minor: number; abc_class: "A" | "B" | "C" }[] }

const ABC_COLOURS: Record<string, string> = { A: "#1f5fa8", B: "#6c9bd2", C: "#c9d3e2" };

export function stockState(s: Suggestion): "out" | "low" | "ok" {
  if (s.available <= 0) return "out";
  if (s.available <= s.reorder_point) return "low";
  return "ok";
}

/** Projected available stock for the next ``days`` days at the forecast demand. */
export function projection(s: Suggestion, days = 30): { day: number; projected: number }[] {
  return Array.from({ length: days + 1 }, (_, d) => ({
    day: d, projected: Math.max(0, Math.round((s.available - s.forecast_daily_demand * d) * 10) / 10),
  }));
}

export default function Inventory() {
  const pager = usePager();
  const [warehouse, setWarehouse] = useState("");
  const [chosen, setChosen] = useState<Suggestion | null>(null);
  const [load, reload] = useLoad(
    () => get<Page<Suggestion>>(svc("inventory", "/v1/replenishment/suggestions",
                                    { warehouse, limit: 25, cursor: pager.cursor })),
    [warehouse, pager.cursor]);
  return (
    <div className="page">
      <div className="toolbar">
        <h1>Inventory</h1>
        <label>Warehouse <input value={warehouse} placeholder="all"
               onChange={(e) => { setWarehouse(e.target.value.trim()); pager.reset(); }} /></label>
      </div>
      <div className="grid">
        <Panel title="Stock-outs and low stock now" wide>
          <Loaded load={load} retry={reload} isEmpty={(d) => d.items.length === 0}
                  empty="No replenishment suggestions yet: planning runs from order history.">
            {(data) => (
              <>
                <div className="chart" data-testid="chart-cover">
                  <ResponsiveContainer width="100%" height={220}>
                    <BarChart data={data.items.map((s) => ({
                      name: `${s.sku}@${s.warehouse}`, cover: s.days_of_cover ?? 0,
                      lead: s.lead_time_days, state: stockState(s) }))}>
                      <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                      <XAxis dataKey="name" hide />
                      <YAxis unit=" d" />
                      <Tooltip />
                      <Legend />
                      <Bar isAnimationActive={false} dataKey="cover" name="days of cover">
                        {data.items.map((s) => (
                          <Cell key={`${s.sku}@${s.warehouse}`} fill={
                            stockState(s) === "out" ? "#c0392b" : stockState(s) === "low" ? "#e0a030" : "#2e8b57"} />
                        ))}
                      </Bar>
                      <Bar isAnimationActive={false} dataKey="lead" name="lead time (d)" fill="#c9d3e2" />
                    </BarChart>
                  </ResponsiveContainer>
                </div>
                <table className="table">
                  <thead><tr><th>SKU</th><th>Warehouse</th><th>State</th><th>Available</th>
                    <th>Reorder point</th><th>Order qty</th><th>Days of cover</th><th>ABC</th>
                    <th>Mode</th></tr></thead>
                  <tbody>
                    {data.items.map((s) => (
                      <tr key={`${s.sku}@${s.warehouse}`} className={chosen === s ? "selected" : ""}
                          onClick={() => setChosen(s)} tabIndex={0}
                          onKeyDown={(e) => e.key === "Enter" && setChosen(s)}>
                        <td>{s.sku}</td><td>{s.warehouse}</td>
                        <td>{stockState(s) === "out" ? <Badge tone="bad">stock-out</Badge>
                          : stockState(s) === "low" ? <Badge tone="warn">low</Badge>
                          : <Badge tone="good">ok</Badge>}</td>
                        <td className="num">{formatCount(s.available)}</td>
                        <td className="num">{formatCount(s.reorder_point)}</td>
                        <td className="num"><b>{formatCount(s.suggested_order_quantity)}</b></td>
                        <td className="num">{s.days_of_cover === null ? "∞" : s.days_of_cover.toFixed(1)}</td>
                        <td>{s.abc_class ?? "—"}</td><td>{s.replenishment_mode}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <Pager page={pager.page} nextCursor={data.next_cursor} onNext={pager.next}
                       onPrev={pager.prev} />
              </>
            )}
          </Loaded>
        </Panel>
        <Panel title={chosen ? `History and forecast: ${chosen.sku} @ ${chosen.warehouse}`
                             : "History and forecast"} wide>
          {chosen ? <SkuHistory s={chosen} /> : <Empty>Choose a row above to draw its stock history and forecast.</Empty>}
        </Panel>
        <AbcMix />
        <Adjustment onDone={reload} />
      </div>
    </div>
  );
}

function SkuHistory({ s }: { s: Suggestion }) {
  const [load, reload] = useLoad(
    () => get<Page<LedgerEntry>>(svc("inventory", `/v1/stock/${encodeURIComponent(s.sku)}/ledger`,
                                      { limit: 200 })), [s.sku]);
  return (
    <Loaded load={load} retry={reload}>
      {(data) => {
        const history = data.items.filter((e) => e.warehouse === s.warehouse)
          .sort((a, b) => a.occurred_at.localeCompare(b.occurred_at))
          .map((e) => ({ at: shortDay(e.occurred_at), on_hand: e.on_hand_after }));
        const forecast = projection(s);
        return (
          <div className="two">
            <div className="chart" data-testid="chart-history">
              <h3>On hand after each movement</h3>
              {history.length === 0 ? <Empty>No stock movements in {s.warehouse}.</Empty> : (
                <ResponsiveContainer width="100%" height={220}>
                  <LineChart data={history}>
                    <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                    <XAxis dataKey="at" /><YAxis allowDecimals={false} /><Tooltip />
                    <Line isAnimationActive={false} type="stepAfter" dataKey="on_hand" name="on hand" stroke="#1f5fa8" dot={false} />
                  </LineChart>
                </ResponsiveContainer>
              )}
            </div>
            <div className="chart" data-testid="chart-forecast">
              <h3>Forecast: {s.forecast_daily_demand.toFixed(2)} units/day</h3>
              <ResponsiveContainer width="100%" height={220}>
                <LineChart data={forecast}>
                  <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                  <XAxis dataKey="day" unit=" d" /><YAxis allowDecimals={false} /><Tooltip />
                  <ReferenceLine y={s.reorder_point} stroke="#e0a030" label="reorder point" />
                  <ReferenceLine y={s.safety_stock} stroke="#c0392b" strokeDasharray="4 4" label="safety stock" />
                  <Line isAnimationActive={false} dataKey="projected" name="projected available" stroke="#2e8b57" dot={false} />
                </LineChart>
              </ResponsiveContainer>
              <p className="hint">{s.reason}</p>
            </div>
          </div>
        );
      }}
    </Loaded>
  );
}

function AbcMix() {
  const [currency, setCurrency] = useState("EUR");
  const [load, reload] = useLoad(
    () => get<Abc>(svc("inventory", "/v1/inventory/abc", { currency })), [currency]);
  return (
    <Panel title="ABC mix" actions={
      <select aria-label="currency" value={currency} onChange={(e) => setCurrency(e.target.value)}>
        {["EUR", "USD", "GBP", "JPY"].map((c) => <option key={c}>{c}</option>)}
      </select>}>
      <Loaded load={load} retry={reload} isEmpty={(d) => d.items.length === 0}
              empty={`No ${currency} sales in the ABC window yet.`}>
        {(data) => {
          const mix = (["A", "B", "C"] as const).map((k) => {
            const rows = data.items.filter((i) => i.abc_class === k);
            return { name: k, skus: rows.length,
                     revenue: rows.reduce((t, r) => t + r.revenue_minor, 0) };
          });
          const total = mix.reduce((t, m) => t + m.revenue, 0);
          return (
            <div className="chart" data-testid="chart-abc">
              <ResponsiveContainer width="100%" height={220}>
                <PieChart>
                  <Pie data={mix} dataKey="skus" nameKey="name" outerRadius={80} label isAnimationActive={false}>
                    {mix.map((m) => <Cell key={m.name} fill={ABC_COLOURS[m.name]} />)}
                  </Pie>
                  <Tooltip /><Legend />
                </PieChart>
              </ResponsiveContainer>
              <ul className="legend-list">
                {mix.map((m) => (
                  <li key={m.name}><b>{m.name}</b>: {m.skus} SKUs, {formatMoney(m.revenue, data.currency)}
                    {total > 0 && ` (${formatRate(m.revenue / total)})`}</li>
                ))}
              </ul>
            </div>
          );
        }}
      </Loaded>
    </Panel>
  );
}

function Adjustment({ onDone }: { onDone: () => void }) {
  const [form, setForm] = useState({ sku: "", warehouse: "", delta: "", reason: "receipt", reference: "" });
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      const entry = await call<LedgerEntry>("POST", svc("inventory", "/v1/stock/adjustments"), {
        sku: form.sku, warehouse: form.warehouse, delta: Number(form.delta), reason: form.reason,
        reference: form.reference || null,
      }, { "Idempotency-Key": newIdempotencyKey() });
      setResult({ ok: true, text: `Recorded: on hand now ${entry.on_hand_after}` });
      onDone();
    } catch (err) {
      setResult({ ok: false, text: err instanceof ApiError ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) =>
    setForm({ ...form, [k]: e.target.value });
  return (
    <Panel title="Stock adjustment">
      <form className="form" onSubmit={submit}>
        <label>SKU <input required value={form.sku} onChange={set("sku")} /></label>
        <label>Warehouse <input required value={form.warehouse} onChange={set("warehouse")} /></label>
        <label>Units (+/−) <input required type="number" value={form.delta} onChange={set("delta")} /></label>
        <label>Reason <select value={form.reason} onChange={set("reason")}>
          {["receipt", "count", "damage", "return", "correction"].map((r) => <option key={r}>{r}</option>)}
        </select></label>
        <label>Reference <input value={form.reference} onChange={set("reference")} /></label>
        <button type="submit" disabled={busy}>Record adjustment</button>
        {result && <p className={result.ok ? "ok" : "error"} role="status">{result.text}</p>}
      </form>
    </Panel>
  );
}

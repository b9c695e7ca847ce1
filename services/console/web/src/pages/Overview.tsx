import { useState } from "react";
import {
  Bar, BarChart, CartesianGrid, ComposedChart, Legend, Line, LineChart, ResponsiveContainer,
  Tooltip, XAxis, YAxis,
} from "recharts";
import { get } from "../api";
import { KpiTile, type Kpi } from "../components/KpiTile";
import { Empty, Loaded, Panel, useLoad } from "../components/ui";
import { formatCount, formatMoney, formatRate, fromMinor, shortDay, toMinor, type Money } from "../format";

interface Step { step: string; count: number; rate: number | null }
interface Point { from: string; to: string; gmv: Money[] | null; orders: number | null;
                  conversion_rate: number | null }
export interface OverviewData {
  from: string; to: string; bucket: string;
  previous: { from: string; to: string };
  kpis: Record<string, Kpi>;
  funnel: { steps: Step[] | null; previous_steps: Step[] | null; reason: string | null };
  series: Point[];
  unavailable: Record<string, string>;
}

const TILES: [string, string, boolean][] = [
  ["gmv", "GMV", false], ["orders", "Orders", false], ["aov", "Average order value", false],
  ["conversion_rate", "Conversion (view → paid)", false],
  ["repurchase_rate", "Repurchase rate", false],
  ["cart_abandonment_rate", "Cart abandonment", true],
  ["cancellation_rate", "Cancellation rate", true], ["return_rate", "Return rate", true],
  ["inventory_turnover", "Inventory turnover", false], ["stock_out_rate", "Stock-out rate", true],
  ["fraud_loss_rate", "Fraud loss rate", true], ["review_rate", "Review rate", true],
];

const RANGES = [7, 30, 90];

export function currencyOf(series: Point[]): string | null {
  for (const p of series) for (const m of p.gmv ?? []) return m.currency;
  return null;
}

export default function Overview() {
  const [days, setDays] = useState(30);
  const [bucket, setBucket] = useState<"day" | "week">("day");
  const [load, reload] = useLoad(() => {
    const to = new Date();
    const from = new Date(to.getTime() - days * 86_400_000);
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), bucket });
    return get<OverviewData>(`/api/overview?${q}`);
  }, [days, bucket]);

  return (
    <div className="page">
      <div className="toolbar">
        <h1>Overview</h1>
        <div className="segmented" role="group" aria-label="window">
          {RANGES.map((d) => (
            <button key={d} type="button" aria-pressed={days === d}
                    onClick={() => { setDays(d); if (d > 60) setBucket("week"); }}>
              {d} days
            </button>
          ))}
        </div>
        <div className="segmented" role="group" aria-label="bucket">
          {(["day", "week"] as const).map((b) => (
            <button key={b} type="button" aria-pressed={bucket === b} onClick={() => setBucket(b)}>
              by {b}
            </button>
          ))}
        </div>
      </div>
      <Loaded load={load} retry={reload}>
        {(data) => <OverviewBody data={data} />}
      </Loaded>
    </div>
  );
}

export function OverviewBody({ data }: { data: OverviewData }) {
  const currency = currencyOf(data.series);
  const chart = data.series.map((p) => ({
    day: shortDay(p.from),
    gmv: currency && p.gmv ? fromMinor(p.gmv.find((m) => m.currency === currency)?.amount_minor ?? 0, currency) : null,
    orders: p.orders,
    conversion: p.conversion_rate === null ? null : p.conversion_rate * 100,
  }));
  const funnel = (data.funnel.steps ?? []).map((s, i) => ({
    step: s.step, now: s.count, before: data.funnel.previous_steps?.[i]?.count ?? 0,
  }));
  const missing = Object.entries(data.unavailable);
  return (
    <>
      {missing.length > 0 && (
        <div className="banner banner-warn" role="status">
          Some figures are unavailable: {missing.map(([s, r]) => `${s} (${r})`).join("; ")}
        </div>
      )}
      <div className="kpis">
        {TILES.map(([key, label, lower]) => data.kpis[key] && (
          <KpiTile key={key} label={label} kpi={data.kpis[key]} lowerIsBetter={lower} />
        ))}
      </div>
      <div className="grid">
        <Panel title={`GMV and orders per ${data.bucket}`} wide>
          {chart.every((p) => !p.orders) ? <Empty>No orders in this window.</Empty> : (
            <div className="chart" data-testid="chart-gmv">
              <ResponsiveContainer width="100%" height={280}>
                <ComposedChart data={chart} margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
                  <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                  <XAxis dataKey="day" />
                  <YAxis yAxisId="gmv" tickFormatter={(v: number) =>
                    currency ? formatMoney(toMinor(v, currency), currency).replace(/[.,]00$/, "") : String(v)} width={90} />
                  <YAxis yAxisId="orders" orientation="right" allowDecimals={false} />
                  <Tooltip formatter={(v, name) => name === "GMV" && currency
                    ? formatMoney(toMinor(Number(v), currency), currency) : formatCount(Number(v))} />
                  <Legend />
                  <Bar isAnimationActive={false} yAxisId="orders" dataKey="orders" name="Orders" fill="#9db4d6" />
                  <Line isAnimationActive={false} yAxisId="gmv" dataKey="gmv" name="GMV" stroke="#1f5fa8" strokeWidth={2} dot={false} />
                </ComposedChart>
              </ResponsiveContainer>
            </div>
          )}
        </Panel>
        <Panel title="Conversion funnel">
          {data.funnel.reason ? <Empty>Unavailable: {data.funnel.reason}</Empty> : (
            <>
              <div className="chart" data-testid="chart-funnel">
                <ResponsiveContainer width="100%" height={220}>
                  <BarChart data={funnel} layout="vertical" margin={{ left: 16, right: 16 }}>
                    <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                    <XAxis type="number" allowDecimals={false} />
                    <YAxis type="category" dataKey="step" width={60} />
                    <Tooltip />
                    <Legend />
                    <Bar isAnimationActive={false} dataKey="now" name="this window" fill="#1f5fa8" />
                    <Bar isAnimationActive={false} dataKey="before" name="previous" fill="#c9d3e2" />
                  </BarChart>
                </ResponsiveContainer>
              </div>
              <ol className="funnel-steps">
                {(data.funnel.steps ?? []).map((s) => (
                  <li key={s.step}><span>{s.step}</span> <b>{formatCount(s.count)}</b>
                    {s.rate !== null && <em> {formatRate(s.rate)} of the step before</em>}</li>
                ))}
              </ol>
            </>
          )}
        </Panel>
        <Panel title={`Conversion per ${data.bucket}`}>
          <div className="chart" data-testid="chart-conversion">
            <ResponsiveContainer width="100%" height={220}>
              <LineChart data={chart} margin={{ left: 8, right: 16 }}>
                <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                <XAxis dataKey="day" />
                <YAxis unit=" %" width={60} />
                <Tooltip formatter={(v) => `${Number(v).toFixed(2)} %`} />
                <Line isAnimationActive={false} dataKey="conversion" name="view → paid" stroke="#2e8b57" strokeWidth={2}
                      dot={false} connectNulls />
              </LineChart>
            </ResponsiveContainer>
          </div>
        </Panel>
      </div>
    </>
  );
}

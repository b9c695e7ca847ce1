import {
  Bar, BarChart, CartesianGrid, Cell, Pie, PieChart, ResponsiveContainer, Tooltip, XAxis, YAxis,
  Legend,
} from "recharts";
import { get, svc } from "../api";
import { Loaded, Panel, useLoad } from "../components/ui";
import { formatCount, formatRate } from "../format";

interface Segments { counts: { segment: string; customers: number }[]; total: number }

/** RFM segments whose customers are drifting away (churn risk). */
export const CHURN_RISK = new Set(["at_risk", "hibernating", "lost", "needs_attention"]);

export function churnShare(data: Segments): number {
  if (data.total === 0) return 0;
  return data.counts.filter((c) => CHURN_RISK.has(c.segment)).reduce((t, c) => t + c.customers, 0)
    / data.total;
}

export default function Customers() {
  const [load, reload] = useLoad(() => get<Segments>(svc("recommendation", "/v1/segments")), []);
  return (
    <div className="page">
      <div className="toolbar"><h1>Customers</h1></div>
      <Loaded load={load} retry={reload} isEmpty={(d) => d.total === 0}
              empty="No customers segmented yet: segments follow purchases.">
        {(data) => {
          const share = churnShare(data);
          const split = [
            { name: "churn risk", value: Math.round(share * data.total) },
            { name: "healthy", value: data.total - Math.round(share * data.total) },
          ];
          return (
            <div className="grid">
              <Panel title={`Segment sizes (${formatCount(data.total)} customers)`} wide>
                <div className="chart" data-testid="chart-segments">
                  <ResponsiveContainer width="100%" height={260}>
                    <BarChart data={data.counts.map((c) => ({ ...c, segment: c.segment.replace(/_/g, " ") }))}>
                      <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ee" />
                      <XAxis dataKey="segment" interval={0} fontSize={12} /><YAxis allowDecimals={false} />
                      <Tooltip />
                      <Bar isAnimationActive={false} dataKey="customers" name="customers">
                        {data.counts.map((c) => (
                          <Cell key={c.segment} fill={CHURN_RISK.has(c.segment) ? "#c0392b" : "#1f5fa8"} />
                        ))}
                      </Bar>
                    </BarChart>
                  </ResponsiveContainer>
                </div>
              </Panel>
              <Panel title={`Churn risk: ${formatRate(share)}`}>
                <div className="chart" data-testid="chart-churn">
                  <ResponsiveContainer width="100%" height={220}>
                    <PieChart>
                      <Pie data={split} dataKey="value" nameKey="name" innerRadius={50} outerRadius={80}
                           isAnimationActive={false}>
                        <Cell fill="#c0392b" /><Cell fill="#2e8b57" />
                      </Pie>
                      <Tooltip /><Legend />
                    </PieChart>
                  </ResponsiveContainer>
                </div>
                <p className="hint">At risk, hibernating, lost and needs-attention customers (RFM).</p>
              </Panel>
            </div>
          );
        }}
      </Loaded>
    </div>
  );
}

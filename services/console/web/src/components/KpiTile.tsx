import { change, formatCount, formatMoneyList, formatRate, type Money } from "../format";

export interface Kpi {
  value: unknown;
  previous: unknown;
  unit: "money" | "count" | "rate" | "ratio" | "rate_by_currency";
  source: string;
  reason: string | null;
}

interface FraudRow { currency: string; rate: number }

function headline(kpi: Kpi, value: unknown, locale?: string): string {
  if (value === null || value === undefined) return "—";
  switch (kpi.unit) {
    case "money": return formatMoneyList(value as Money[], locale);
    case "count": return formatCount(value as number, locale);
    case "rate": return formatRate(value as number);
    case "ratio": return (value as number).toFixed(2);
    case "rate_by_currency": {
      const rows = value as FraudRow[];
      return rows.length ? rows.map((r) => `${formatRate(r.rate, 2)} ${r.currency}`).join(" · ")
        : formatRate(0, 2);
    }
  }
}

function scalar(kpi: Kpi, value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (kpi.unit === "money") {
    const rows = value as Money[];
    return rows.length === 1 ? rows[0].amount_minor : rows.length === 0 ? 0 : null;
  }
  if (kpi.unit === "rate_by_currency") {
    const rows = value as FraudRow[];
    return rows.length === 1 ? rows[0].rate : rows.length === 0 ? 0 : null;
  }
  return value as number;
}

/** A KPI with its change against the previous window; ``lowerIsBetter`` colours the arrow. */
export function KpiTile({ label, kpi, lowerIsBetter = false, locale }: {
  label: string; kpi: Kpi; lowerIsBetter?: boolean; locale?: string;
}) {
  const delta = change(scalar(kpi, kpi.value), scalar(kpi, kpi.previous));
  const good = delta === null || delta === 0 ? "neutral"
    : (delta > 0) !== lowerIsBetter ? "good" : "bad";
  return (
    <div className="kpi" data-testid={`kpi-${label}`}>
      <div className="kpi-label">{label}</div>
      <div className="kpi-value">{headline(kpi, kpi.value, locale)}</div>
      {kpi.reason ? (
        <div className="kpi-reason" title={kpi.reason}>unavailable: {kpi.reason}</div>
      ) : (
        <div className={`kpi-change kpi-${good}`}>
          {delta === null ? "no comparison"
            : `${delta > 0 ? "▲" : delta < 0 ? "▼" : "="} ${Math.abs(delta * 100).toFixed(1)} % vs previous`}
        </div>
      )}
    </div>
  );
}

// Numbers as a person reads them: money from minor units with the currency's own exponent
// (EUR 2, JPY 0, KWD 3 — what Intl.NumberFormat knows of ISO 4217), rates as percentages.

export interface Money {
  currency: string;
  amount_minor: number;
}

const exponents = new Map<string, number>();

/** The number of minor-unit digits of a currency (ISO 4217, through Intl). */
export function currencyExponent(currency: string): number {
  let exp = exponents.get(currency);
  if (exp === undefined) {
    try {
      exp = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
        .maximumFractionDigits ?? 2;
    } catch {
      exp = 2;
    }
    exponents.set(currency, exp);
  }
  return exp;
}

export function fromMinor(amountMinor: number, currency: string): number {
  return amountMinor / 10 ** currencyExponent(currency);
}

export function formatMoney(amountMinor: number | null | undefined, currency: string,
                            locale?: string): string {
  if (amountMinor === null || amountMinor === undefined) return "—";
  const exp = currencyExponent(currency);
  try {
    return new Intl.NumberFormat(locale, {
      style: "currency", currency, minimumFractionDigits: exp, maximumFractionDigits: exp,
    }).format(fromMinor(amountMinor, currency));
  } catch {
    return `${amountMinor} ${currency} (minor units)`;
  }
}

export function formatMoneyList(rows: Money[] | null | undefined, locale?: string): string {
  if (!rows) return "—";
  if (rows.length === 0) return formatMoney(0, "EUR", locale);
  return rows.map((r) => formatMoney(r.amount_minor, r.currency, locale)).join(" · ");
}

export function formatRate(rate: number | string | null | undefined, digits = 1): string {
  if (rate === null || rate === undefined || rate === "") return "—";
  const value = typeof rate === "string" ? Number(rate) : rate;
  if (!Number.isFinite(value)) return "—";
  return `${(value * 100).toFixed(digits)} %`;
}

export function formatCount(value: number | null | undefined, locale?: string): string {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(locale).format(value);
}

export function formatDate(value: string | null | undefined, locale?: string): string {
  if (!value) return "—";
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) return value;
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" })
    .format(at);
}

export function shortDay(value: string, locale?: string): string {
  const at = new Date(value);
  return new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", timeZone: "UTC" }).format(at);
}

/** Relative change of a KPI against the previous window; null when it cannot be said. */
export function change(current: number | null | undefined,
                       previous: number | null | undefined): number | null {
  if (current === null || current === undefined || previous === null || previous === undefined) {
    return null;
  }
  if (previous === 0) return current === 0 ? 0 : null;
  return (current - previous) / Math.abs(previous);
}

/** Major units (a chart's axis value) back to minor units of the currency. */
export function toMinor(amount: number, currency: string): number {
  return Math.round(amount * 10 ** currencyExponent(currency));
}

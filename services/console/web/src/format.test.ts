import { describe, expect, it } from "vitest";
import { change, currencyExponent, formatMoney, formatMoneyList, formatRate, toMinor } from "./format";

describe("money in minor units", () => {
  it("uses the currency's exponent", () => {
    expect(currencyExponent("EUR")).toBe(2);
    expect(currencyExponent("JPY")).toBe(0);
    expect(currencyExponent("KWD")).toBe(3);
    expect(formatMoney(123456, "EUR", "en-GB")).toBe("€1,234.56");
    expect(formatMoney(1234, "JPY", "en-US")).toBe("¥1,234");
    expect(formatMoney(1234, "KWD", "en-US").replace(/\s/g, " ")).toBe("KWD 1.234");
    expect(formatMoney(5, "EUR", "de-DE").replace(/\s/g, " ")).toBe("0,05 €");
    expect(formatMoney(-250, "USD", "en-US")).toBe("-$2.50");
  });
  it("turns chart values back into minor units", () => {
    expect(toMinor(12.34, "EUR")).toBe(1234);
    expect(toMinor(1234, "JPY")).toBe(1234);
  });
  it("shows a missing amount as a dash and lists currencies apart", () => {
    expect(formatMoney(null, "EUR")).toBe("—");
    expect(formatMoneyList([{ currency: "EUR", amount_minor: 100 }, { currency: "USD", amount_minor: 250 }], "en-US"))
      .toBe("€1.00 · $2.50");
  });
});

describe("rates and changes", () => {
  it("formats rates as percentages", () => {
    expect(formatRate("0.0312")).toBe("3.1 %");
    expect(formatRate(null)).toBe("—");
    expect(formatRate("not a number")).toBe("—");
  });
  it("computes the change against the previous window", () => {
    expect(change(120, 100)).toBeCloseTo(0.2);
    expect(change(0, 0)).toBe(0);
    expect(change(5, 0)).toBeNull();
    expect(change(null, 3)).toBeNull();
  });
});

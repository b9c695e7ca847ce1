import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import { KpiTile } from "./KpiTile";
import { Loaded, Pager } from "./ui";

afterEach(cleanup);

describe("KpiTile", () => {
  it("shows the value and the change against the previous window", () => {
    render(<KpiTile label="GMV" locale="en-GB" kpi={{
      value: [{ currency: "EUR", amount_minor: 12000 }], previous: [{ currency: "EUR", amount_minor: 10000 }],
      unit: "money", source: "order", reason: null }} />);
    expect(screen.getByText("€120.00")).toBeTruthy();
    const delta = screen.getByText(/20\.0 % vs previous/);
    expect(delta.textContent).toContain("▲");
    expect(delta.className).toContain("kpi-good");
  });
  it("colours a rise red when lower is better", () => {
    render(<KpiTile label="Returns" lowerIsBetter kpi={{ value: 0.1, previous: 0.05, unit: "rate",
      source: "order", reason: null }} />);
    expect(screen.getByText("10.0 %")).toBeTruthy();
    expect(screen.getByText(/100\.0 % vs previous/).className).toContain("kpi-bad");
  });
  it("says why a KPI is unavailable", () => {
    render(<KpiTile label="Fraud" kpi={{ value: null, previous: null, unit: "rate_by_currency",
      source: "risk", reason: "risk service: no answer within 5 s" }} />);
    expect(screen.getByText("—")).toBeTruthy();
    expect(screen.getByText(/unavailable: risk service: no answer/)).toBeTruthy();
  });
});

describe("Loaded", () => {
  it("has loading, error, empty and ready states", () => {
    const child = (d: number[]) => <p>{d.length} rows</p>;
    const { rerender } = render(<Loaded load={{ state: "loading" }}>{child}</Loaded>);
    expect(screen.getByRole("status").textContent).toContain("Loading");
    const retry = vi.fn();
    rerender(<Loaded load={{ state: "error", error: new ApiError(503, { detail: "risk is down" }) }}
                     retry={retry}>{child}</Loaded>);
    expect(screen.getByRole("alert").textContent).toContain("A service is unavailable");
    fireEvent.click(screen.getByText("Try again"));
    expect(retry).toHaveBeenCalledOnce();
    rerender(<Loaded load={{ state: "ready", data: [] as number[] }} isEmpty={(d) => d.length === 0}
                     empty="Nothing to review">{child}</Loaded>);
    expect(screen.getByText("Nothing to review")).toBeTruthy();
    rerender(<Loaded load={{ state: "ready", data: [1, 2] }} isEmpty={(d) => d.length === 0}>{child}</Loaded>);
    expect(screen.getByText("2 rows")).toBeTruthy();
  });
});

describe("Pager", () => {
  it("pages forward with the cursor and back", () => {
    const next = vi.fn();
    const prev = vi.fn();
    const { rerender } = render(<Pager page={1} nextCursor="c2" onNext={next} onPrev={prev} />);
    expect((screen.getByText("‹ Previous") as HTMLButtonElement).disabled).toBe(true);
    act(() => { fireEvent.click(screen.getByText("Next ›")); });
    expect(next).toHaveBeenCalledWith("c2");
    rerender(<Pager page={2} nextCursor={null} onNext={next} onPrev={prev} />);
    expect((screen.getByText("Next ›") as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByText("‹ Previous"));
    expect(prev).toHaveBeenCalledOnce();
  });
});

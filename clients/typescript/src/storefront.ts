// A storefront's calls to ecomops, typed by the types openapi-typescript generates from the
// services' OpenAPI documents (`ecomops openapi --output DIR`). scripts/ts_client_check.sh
// generates them into generated/ and type-checks this file (tsc --noEmit) in `make test`:
// a path, parameter, body field or answer that changes in a service breaks this build.
import createClient, { type Middleware } from "openapi-fetch";
import type { components as Order, paths as OrderPaths } from "../generated/order";
import type { paths as InventoryPaths } from "../generated/inventory";
import type { paths as PricingPaths } from "../generated/pricing";
import type { paths as RecommendationPaths } from "../generated/recommendation";
import type { paths as RiskPaths } from "../generated/risk";
import type { components as All } from "../generated/ecomops";

type Problem = Order["schemas"]["Problem"];
type OrderView = Order["schemas"]["OrderView"];

/** The bearer token on every call (the documents' `bearerAuth` scheme). */
function bearer(token: () => string): Middleware {
  return {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${token()}`);
      return request;
    },
  };
}

export class Storefront {
  private readonly order;
  private readonly inventory;

  constructor(orderUrl: string, inventoryUrl: string, token: () => string) {
    this.order = createClient<OrderPaths>({ baseUrl: orderUrl });
    this.order.use(bearer(token));
    this.inventory = createClient<InventoryPaths>({ baseUrl: inventoryUrl });
    this.inventory.use(bearer(token));
  }

  /** A cart, then one line, then checkout: the Idempotency-Key is required by the types. */
  async buy(sku: string, quantity: number, key: string): Promise<OrderView | Problem> {
    const cart = await this.order.POST("/v1/carts", {
      params: { header: { "Idempotency-Key": `${key}-cart` } },
      body: { currency: "EUR" },
    });
    if (cart.error !== undefined) return cart.error;
    const where: string | null = cart.response.headers.get("Location");
    void where;
    const cartId: string = cart.data.cart_id;
    const line = await this.order.PUT("/v1/carts/{cart_id}/items/{sku}", {
      params: { path: { cart_id: cartId, sku } },
      body: { quantity },
    });
    if (line.error !== undefined) return line.error;
    const placed = await this.order.POST("/v1/carts/{cart_id}/checkout", {
      params: { path: { cart_id: cartId }, header: { "Idempotency-Key": key } },
      body: {
        shipping_address: {
          name: "Ada Buyer",
          line1: "1 Test Street",
          city: "Lyon",
          postal_code: "69001",
          country: "FR",
        },
      },
    });
    if (placed.error !== undefined) {
      const problem: Problem = placed.error;
      return problem;
    }
    const replayed: string | null = placed.response.headers.get("Idempotent-Replayed");
    void replayed;
    return placed.data;
  }

  async available(sku: string): Promise<number | Problem> {
    const stock = await this.inventory.GET("/v1/stock/{sku}", { params: { path: { sku } } });
    if (stock.error !== undefined) return stock.error;
    return stock.data.available;
  }

  async withoutKey(): Promise<void> {
    // @ts-expect-error the documents declare Idempotency-Key required on POST /v1/carts
    await this.order.POST("/v1/carts", { body: { currency: "EUR" } });
  }
}

// Every service's document generates types; the combined one too.
export type Documents = [OrderPaths, InventoryPaths, PricingPaths, RecommendationPaths, RiskPaths];
export type CombinedProblem = All["schemas"]["Problem"];
export const problemType = (p: Problem): string => p.type;

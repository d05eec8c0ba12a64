/** Units on the shelf per SKU. */
export type StockLevels = Record<string, number>;

/**
 * Where the projection keeps its result: in production a table that the product pages read
 * (its contents survive restarts, like the group's committed offsets do); in memory here.
 */
export interface StockReadModel {
  /** Adds `delta` (negative to remove) to a SKU's level. */
  adjust(sku: string, delta: number): Promise<void>;
  /** Forgets every level: the first step of a rebuild. */
  clear(): Promise<void>;
  levels(): Promise<StockLevels>;
}

export class InMemoryStockReadModel implements StockReadModel {
  private readonly bySku = new Map<string, number>();

  async adjust(sku: string, delta: number): Promise<void> {
    this.bySku.set(sku, (this.bySku.get(sku) ?? 0) + delta);
  }

  async clear(): Promise<void> {
    this.bySku.clear();
  }

  async levels(): Promise<StockLevels> {
    return Object.fromEntries([...this.bySku].sort(([a], [b]) => a.localeCompare(b)));
  }
}

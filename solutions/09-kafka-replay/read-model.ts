import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Units on the shelf per SKU. */
export type StockLevels = Record<string, number>;

/** Where a movement sits in the log. */
export interface LogPosition {
  partition: number;
  offset: string;
}

/**
 * Where the projection keeps its result: in production a table that the product pages read; here
 * in memory, or in a file that survives a crash of the process. Next to the levels it keeps, per
 * partition, how far it has applied the log, and it records both in one step: after a crash the
 * read model knows exactly which movements it holds, even when the group's commit did not happen.
 */
export interface StockReadModel {
  /** Adds `delta` (negative to remove) to a SKU's level and records `position` as applied, together. */
  apply(sku: string, delta: number, position: LogPosition): Promise<void>;
  /** The offset after the last movement applied on `partition`, or undefined when it holds none. */
  resumeOffset(partition: number): Promise<string | undefined>;
  /** Forgets every level and position: the first step of a rebuild. */
  clear(): Promise<void>;
  levels(): Promise<StockLevels>;
}

interface StoredState {
  levels: StockLevels;
  /** Partition number to the offset after the last applied movement. */
  resumeAt: Record<string, string>;
}

function applyTo(state: StoredState, sku: string, delta: number, { partition, offset }: LogPosition): void {
  state.levels[sku] = (state.levels[sku] ?? 0) + delta;
  state.resumeAt[String(partition)] = (BigInt(offset) + 1n).toString();
}

function sortedLevels(levels: StockLevels): StockLevels {
  return Object.fromEntries(Object.entries(levels).sort(([a], [b]) => a.localeCompare(b)));
}

export class InMemoryStockReadModel implements StockReadModel {
  private state: StoredState = { levels: {}, resumeAt: {} };

  async apply(sku: string, delta: number, position: LogPosition): Promise<void> {
    applyTo(this.state, sku, delta, position);
  }

  async resumeOffset(partition: number): Promise<string | undefined> {
    return this.state.resumeAt[String(partition)];
  }

  async clear(): Promise<void> {
    this.state = { levels: {}, resumeAt: {} };
  }

  async levels(): Promise<StockLevels> {
    return sortedLevels(this.state.levels);
  }
}

/**
 * The read model in a JSON file, rewritten whole on every change: written to a temporary file and
 * renamed over the old one, so a process killed at any moment leaves either the old state or the
 * new one, never half of each. (A rename survives a crash of the process; surviving a power cut
 * would also need an fsync. A database table with the position in the same transaction is the
 * production version.)
 */
export class FileStockReadModel implements StockReadModel {
  private state: StoredState;

  constructor(private readonly path: string) {
    this.state = FileStockReadModel.read(path);
  }

  /** The state as a file holds it (empty when there is no file yet). */
  static read(path: string): StoredState {
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<StoredState>;
      return { levels: parsed.levels ?? {}, resumeAt: parsed.resumeAt ?? {} };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { levels: {}, resumeAt: {} };
      throw new Error(`cannot read the stock levels in ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  async apply(sku: string, delta: number, position: LogPosition): Promise<void> {
    const next: StoredState = { levels: { ...this.state.levels }, resumeAt: { ...this.state.resumeAt } };
    applyTo(next, sku, delta, position);
    this.write(next);
  }

  async resumeOffset(partition: number): Promise<string | undefined> {
    return this.state.resumeAt[String(partition)];
  }

  async clear(): Promise<void> {
    this.write({ levels: {}, resumeAt: {} });
  }

  async levels(): Promise<StockLevels> {
    return sortedLevels(this.state.levels);
  }

  private write(next: StoredState): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(next));
    renameSync(temporary, this.path);
    this.state = next;
  }
}

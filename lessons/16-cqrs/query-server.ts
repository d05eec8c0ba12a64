import express, { type NextFunction, type Request, type Response } from 'express';
import { poolFromEnv } from './db.ts';
import { kafkaFromEnv } from './kafka.ts';
import { getAccount, projectionLag, waitForAccount } from './queries.ts';

// The query side: answers from the read model, and says how fresh each answer is.
//   PORT=3001 ACCOUNT_TOPIC=account-events npx tsx lessons/16-cqrs/query-server.ts
//   curl 'localhost:3001/accounts/acc-1'                          the account as the read model has it
//   curl 'localhost:3001/accounts/acc-1?atLeast=42'               ... and whether it reflects position 42
//   curl 'localhost:3001/accounts/acc-1?atLeast=42&waitMs=2000'   ... waiting up to 2 s for it to
//   curl 'localhost:3001/status'                                  the projection's lag per partition
const MAX_WAIT_MS = 10_000;
const topic = process.env.ACCOUNT_TOPIC ?? 'account-events';
const port = Number(process.env.PORT ?? 3001);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`PORT must be a port number, not "${process.env.PORT}"`);
  process.exit(1);
}
const pool = (() => {
  try {
    return poolFromEnv();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
})();
const admin = kafkaFromEnv(`account-queries-${process.pid}`).admin();

class BadRequest extends Error {}

/** A non-negative whole number from the query string, or undefined when absent. */
function wholeNumber(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number)) throw new BadRequest(`${name} must be a whole number`);
  return number;
}

const app = express();
app.get('/health', (_req, res) => {
  res.json({ ok: true });
});

app.get('/accounts/:accountId', async (req, res) => {
  const atLeast = wholeNumber(req.query.atLeast, 'atLeast');
  const waitMs = Math.min(wholeNumber(req.query.waitMs, 'waitMs') ?? 0, MAX_WAIT_MS);
  const answer = atLeast !== undefined && waitMs > 0
    ? await waitForAccount(pool, req.params.accountId, atLeast, waitMs)
    : await getAccount(pool, req.params.accountId, atLeast);
  res.status(answer.account ? 200 : 404).json(answer);
});

app.get('/status', async (_req, res) => {
  res.json(await projectionLag(pool, admin, topic));
});

app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
  if (error instanceof BadRequest) {
    res.status(400).json({ error: error.message });
    return;
  }
  console.error(`[queries] ${error instanceof Error ? error.message : String(error)}`);
  res.status(500).json({ error: error instanceof Error ? error.message : String(error) });
});

try {
  await admin.connect();
} catch (error) {
  console.error(`cannot reach Kafka: ${(error as Error).message}`);
  await pool.end();
  process.exit(1);
}
const server = app.listen(port, () => console.log(`query side listening on http://127.0.0.1:${port}`));
server.on('error', (error) => {
  console.error(`cannot listen on port ${port}: ${error.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    void Promise.allSettled([admin.disconnect(), pool.end()]).then(() => process.exit(0));
  });
}

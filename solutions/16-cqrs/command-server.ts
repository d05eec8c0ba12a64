import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { CommandRejected, deposit, openAccount, withdraw } from './accounts.ts';
import { poolFromEnv } from './db.ts';
import { ConcurrencyError } from './event-store.ts';

// The command side: validates, decides against the event store, appends. Every answer carries the
// position of the new event, which a client passes to the query side as atLeast.
//   PORT=3000 npx tsx lessons/16-cqrs/command-server.ts
//   curl -XPOST localhost:3000/accounts -H 'content-type: application/json' -d '{"accountId":"acc-1","owner":"Ada"}'
//   curl -XPOST localhost:3000/accounts/acc-1/deposits -H 'content-type: application/json' -d '{"amountCents":2500}'
//   curl -XPOST localhost:3000/accounts/acc-1/withdrawals -H 'content-type: application/json' -d '{"amountCents":1000}'
const port = Number(process.env.PORT ?? 3000);
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

const OpenAccount = z.strictObject({ accountId: z.string().trim().min(1).max(100), owner: z.string().trim().min(1).max(200) });
const Amount = z.strictObject({ amountCents: z.number().int().positive().max(Number.MAX_SAFE_INTEGER) });

const app = express();
app.use(express.json());
app.get('/health', (_req, res) => {
  res.json({ ok: true });
});

app.post('/accounts', async (req, res) => {
  res.status(201).json(await openAccount(pool, OpenAccount.parse(req.body)));
});

app.post('/accounts/:accountId/deposits', async (req, res) => {
  res.status(201).json(await deposit(pool, { accountId: req.params.accountId, ...Amount.parse(req.body) }));
});

app.post('/accounts/:accountId/withdrawals', async (req, res) => {
  res.status(201).json(await withdraw(pool, { accountId: req.params.accountId, ...Amount.parse(req.body) }));
});

app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
  if (error instanceof z.ZodError) {
    res.status(400).json({ error: error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') });
  } else if (error instanceof CommandRejected) {
    res.status(422).json({ error: error.message });
  } else if (error instanceof ConcurrencyError) {
    res.status(409).json({ error: `${error.message}; try again` });
  } else if (error instanceof SyntaxError) {
    res.status(400).json({ error: 'the body is not valid JSON' });
  } else {
    console.error(`[commands] ${error instanceof Error ? error.message : String(error)}`);
    res.status(500).json({ error: 'internal error' });
  }
});

const server = app.listen(port, () => console.log(`command side listening on http://127.0.0.1:${port}`));
server.on('error', (error) => {
  console.error(`cannot listen on port ${port}: ${error.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    void pool.end().then(() => process.exit(0));
  });
}

import express, { type Express } from 'express';
import type pg from 'pg';
import type { TokenSettings } from '../platform/config.ts';
import { errorHandler, requestLogging, userIdFrom } from '../platform/http.ts';
import { issueToken } from '../platform/tokens.ts';
import { checkCredentials, checkOrderLines, checkSignUp, UUID } from '../platform/validation.ts';
import { authenticateUser, findOrder, findUser, ordersOf, paymentsOf, placeOrder, registerUser } from './shop.ts';

/**
 * The shop as it was: one Express app for users, orders, payments and emails. It already sits
 * behind the gateway (the first step of the breakup), so it trusts the X-User-Id the gateway sets
 * from the verified token, exactly as the new services do.
 */
export function createMonolithApp(pool: pg.Pool, tokens: TokenSettings): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogging('monolith'));
  app.use(express.json());

  app.get('/health', (_request, response) => {
    response.json({ ok: true, service: 'monolith' });
  });

  app.post('/users', async (request, response) => {
    const signUp = checkSignUp(request.body);
    if (!signUp.ok) {
      response.status(400).json({ error: signUp.error });
      return;
    }
    const user = await registerUser(pool, signUp.value);
    if (!user) response.status(409).json({ error: `${signUp.value.email} is already registered` });
    else response.status(201).json(user);
  });

  app.post('/sessions', async (request, response) => {
    const credentials = checkCredentials(request.body);
    const user = credentials.ok ? await authenticateUser(pool, credentials.value) : undefined;
    if (!user) {
      response.status(401).json({ error: 'unknown email or wrong password' });
      return;
    }
    response.status(201).json({ token: await issueToken(tokens, user.id), userId: user.id });
  });

  app.get('/users/:id', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    if (request.params.id !== userId) {
      response.status(UUID.test(request.params.id) ? 403 : 404).json({ error: 'you can only read your own profile' });
      return;
    }
    const user = await findUser(pool, userId);
    if (!user) response.status(404).json({ error: 'no such user' });
    else response.json(user);
  });

  app.post('/orders', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    const lines = checkOrderLines(request.body);
    if (!lines.ok) {
      response.status(400).json({ error: lines.error });
      return;
    }
    const order = await placeOrder(pool, userId, lines.value);
    if (!order) response.status(404).json({ error: 'no such user' });
    else response.status(201).json(order);
  });

  app.get('/orders', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    if (request.query.userId !== userId) {
      response.status(403).json({ error: 'you can only list your own orders (?userId=<your id>)' });
      return;
    }
    response.json(await ordersOf(pool, userId));
  });

  app.get('/orders/:id', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    const order = UUID.test(request.params.id) ? await findOrder(pool, request.params.id) : undefined;
    if (!order || order.userId !== userId) response.status(404).json({ error: 'no such order' });
    else response.json(order);
  });

  app.get('/payments', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    if (request.query.userId !== userId) {
      response.status(403).json({ error: 'you can only list your own payments (?userId=<your id>)' });
      return;
    }
    response.json(await paymentsOf(pool, userId));
  });

  app.use(errorHandler('monolith'));
  return app;
}

import express, { type Express } from 'express';
import type pg from 'pg';
import type { TokenSettings } from '../../platform/config.ts';
import { errorHandler, requestIdFrom, requestLogging, userIdFrom } from '../../platform/http.ts';
import { issueToken } from '../../platform/tokens.ts';
import { checkCredentials, checkSignUp, UUID } from '../../platform/validation.ts';
import { authenticateUser, findUser, registerUser } from './users.ts';

/** The users service: sign-up, sign-in (it issues the tokens the gateway verifies), profiles. */
export function createUsersApp(pool: pg.Pool, tokens: TokenSettings, instanceId = 'users'): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogging('users', instanceId));
  app.use(express.json());

  app.get('/health', (_request, response) => {
    response.json({ ok: true, service: 'users', instanceId });
  });

  app.post('/users', async (request, response) => {
    const signUp = checkSignUp(request.body);
    if (!signUp.ok) {
      response.status(400).json({ error: signUp.error });
      return;
    }
    const user = await registerUser(pool, signUp.value, requestIdFrom(response));
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
    const id = request.params.id;
    if (id !== userId) {
      response.status(UUID.test(id) ? 403 : 404).json({ error: 'you can only read your own profile' });
      return;
    }
    const user = await findUser(pool, id);
    if (!user) response.status(404).json({ error: 'no such user' });
    else response.json(user);
  });

  app.use(errorHandler('users'));
  return app;
}

import express, { type Express } from 'express';
import type pg from 'pg';
import { errorHandler, requestLogging, userIdFrom } from '../../platform/http.ts';

/** The notifications service's API: the emails a user was sent. */
export function createNotificationsApp(pool: pg.Pool, instanceId = 'notifications'): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogging('notifications', instanceId));

  app.get('/health', (_request, response) => {
    response.json({ ok: true, service: 'notifications', instanceId });
  });

  app.get('/emails', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    const { rows } = await pool.query(
      'SELECT kind, to_address AS "to", subject, sent_at AS "sentAt" FROM sent_emails WHERE user_id = $1 ORDER BY id',
      [userId],
    );
    response.json(rows);
  });

  app.use(errorHandler('notifications'));
  return app;
}

import { createSignupApp } from './app.ts';

// A runnable demo: `npx tsx lessons/01-signup-events/main.ts`
const { users } = createSignupApp({
  mailer: { sendWelcomeEmail: async (to, name) => console.log(`email   → welcome ${name} <${to}>`) },
  keys: { issueKey: async (userId) => (console.log(`auth    → key issued for ${userId}`), `key-${userId}`) },
  audit: { record: async (entry) => console.log(`audit   → ${entry.action} ${entry.userId} at ${entry.at}`) },
});

const user = await users.signup({ email: 'ada@example.com', name: 'Ada' }, { waitForSubscribers: true });
console.log(`signup  → created ${user.id}`);

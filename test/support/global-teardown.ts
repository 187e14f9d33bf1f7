export default async function globalTeardown(): Promise<void> {
  const stack = globalThis.__latchkeyStack;
  if (!stack || --stack.users > 0) return;
  await stack.bao?.stop();
  await stack.redis?.stop();
  globalThis.__latchkeyStack = undefined;
}

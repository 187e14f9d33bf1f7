/**
 * `node --experimental-websocket heap.js <inspector-port>`: asks a process
 * started with --inspect for a full GC, then for process.memoryUsage(), over
 * the DevTools protocol, and prints it as JSON. The bench measures the api's
 * heap this way so production carries no GC or heap endpoint of its own.
 */
interface Ws {
  onopen: () => void;
  onerror: (e: unknown) => void;
  onmessage: (e: { data: string }) => void;
  send(s: string): void;
  close(): void;
}

async function main(): Promise<void> {
  const port = process.argv[2];
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const WebSocketCtor = (globalThis as unknown as { WebSocket: new (url: string) => Ws }).WebSocket;
  const ws = new WebSocketCtor(targets[0].webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let next = 0;
  const pending = new Map<number, (r: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data) as { id?: number; result?: unknown };
    if (m.id !== undefined) pending.get(m.id)?.(m.result);
  };
  const send = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const id = ++next;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  // Twice: weak references and finalizers released by the first pass are collected by the second.
  await send('HeapProfiler.collectGarbage');
  await send('HeapProfiler.collectGarbage');
  const r = (await send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
  process.stdout.write(`${r.result.value}\n`);
  ws.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`heap probe failed: ${(err as Error).message}\n`);
  process.exit(1);
});

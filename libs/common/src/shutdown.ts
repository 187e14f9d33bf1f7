/**
 * Graceful shutdown for process entry points: on SIGTERM/SIGINT close the
 * application (drain HTTP, let running jobs finish, close connections) and exit
 * 0; exit 1 if closing takes longer than the grace period. Nest's own signal
 * hooks re-raise the signal after closing, which hides a clean stop from
 * supervisors; this exits with a status instead.
 */
export function exitOnSignals(close: () => Promise<void>, graceMs: number, log: (m: string) => void): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    log(`${signal} received, shutting down`);
    const timer = setTimeout(() => {
      log(`shutdown took longer than ${graceMs} ms, exiting`);
      process.exit(1);
    }, graceMs);
    timer.unref();
    close().then(
      () => {
        log('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log(`shutdown failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

import { useEffect, useState } from 'preact/hooks';
import { AppUsage, get, seg } from '../api';
import { UsageChart } from '../chart';
import { ErrorBox, KV, useLoad } from '../ui';

/** An app's verifications over time, valid and refused by code (GET /v1/apps/{appId}/usage). */
export function AppUsagePanel({ appId }: { appId: string }) {
  const [hours, setHours] = useState(24);
  const [tick, setTick] = useState(0);
  const usage = useLoad(() => get<AppUsage>(`/v1/apps/${seg(appId)}/usage`, { hours }), [appId, hours, tick]);
  useEffect(() => {
    const t = setInterval(() => setTick((x) => x + 1), 10_000);
    return () => clearInterval(t);
  }, []);
  const u = usage.data;
  return (
    <section aria-labelledby="app-usage-h">
      <h2 id="app-usage-h">Usage</h2>
      <div class="field inline">
        <label for="app-usage-hours">Period</label>
        <select id="app-usage-hours" value={String(hours)} onChange={(e) => setHours(Number((e.currentTarget as HTMLSelectElement).value))}>
          <option value="6">6 hours</option>
          <option value="24">24 hours</option>
          <option value="72">3 days</option>
          <option value="168">7 days</option>
        </select>
      </div>
      {usage.error !== undefined && !u && <ErrorBox error={usage.error} />}
      {u && (
        <>
          <KV
            items={[
              ['Verifications (30 days)', String(u.verify.count)],
              ['Valid', String(u.verify.valid)],
              ['Refused', `${u.verify.refused}${Object.keys(u.verify.refusedByCode).length ? ` (${Object.entries(u.verify.refusedByCode).map(([c, n]) => `${c} ${n}`).join(', ')})` : ''}`],
            ]}
          />
          {u.hourly ? <UsageChart title={`Verifications of ${appId}'s keys per hour`} hourly={u.hourly} /> : <p class="muted">This api does not report hourly usage.</p>}
          <p class="small muted">Counts lag by up to {u.freshnessSeconds}s. Refusals that name no key of the app (malformed or unknown keys) cannot be counted here.</p>
        </>
      )}
    </section>
  );
}

import { useState } from 'preact/hooks';
import { AppUsage, get, seg } from '../api';
import { UsageChart } from '../chart';
import { ErrorBox, KV, PeriodSelect, useLoad, usePoll } from '../ui';

/** An app's verifications over time, valid and refused by code (GET /v1/apps/{appId}/usage). */
export function AppUsagePanel({ appId }: { appId: string }) {
  const [hours, setHours] = useState(24);
  const usage = useLoad(() => get<AppUsage>(`/v1/apps/${seg(appId)}/usage`, { hours }), [appId, hours]);
  usePoll(usage.reload, 10_000);
  const u = usage.data;
  return (
    <section aria-labelledby="app-usage-h">
      <h2 id="app-usage-h">Usage</h2>
      <PeriodSelect id="app-usage-hours" hours={hours} onChange={setHours} />
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

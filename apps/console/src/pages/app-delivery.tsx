import { useState } from 'preact/hooks';
import { ApiError, call, get, Schemas, seg } from '../api';
import { href } from '../router';
import { Dialog, ErrorBox, ForgetButton, FormActions, KV, Notice, SecretField, THead, Time, useLoad } from '../ui';

type Webhook = Schemas['WebhookResponse'];
type Delivery = Schemas['DeliveryRecordResponse'];

/**
 * Delivery of rotated keys to the app: its webhook (set, test, remove) and the delivery history. Setting the
 * webhook is a right of its own (update on latchkey/apps/<app>/webhook): whoever sets it receives the app's
 * rotated keys. The signing secret is shown once, like a key.
 */
export function AppDelivery({ appId }: { appId: string }) {
  const hook = useLoad(
    () =>
      get<Webhook>(`/v1/apps/${seg(appId)}/webhook`).catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 404 && err.code === 'NOT_FOUND') return null;
        throw err;
      }),
    [appId],
  );
  const history = useLoad(() => get<{ items: Delivery[] }>(`/v1/apps/${seg(appId)}/deliveries`), [appId]);
  const [editing, setEditing] = useState(false);
  const [removing, setRemoving] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  const sendTest = async () => {
    setError(undefined);
    setNotice(null);
    try {
      const r = (await call<Schemas['WebhookTestResponse']>('POST', `/v1/apps/${seg(appId)}/webhook/test`)).body;
      setNotice(r.status === 'delivered' ? `Test event delivered (HTTP ${r.httpStatus}, ${r.latencyMs} ms).` : `Test event failed: ${r.error ?? `HTTP ${r.httpStatus}`}.`);
      history.reload();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (e: Event) => {
    e.preventDefault();
    try {
      await call('DELETE', `/v1/apps/${seg(appId)}/webhook`);
      setRemoving(false);
      setNotice('Webhook removed.');
      hook.reload();
    } catch (err) {
      setError(err);
      setRemoving(false);
    }
  };
  const h = hook.data;
  return (
    <section aria-labelledby="delivery-h">
      <h2 id="delivery-h">Delivery</h2>
      <p class="muted">Rotated keys are written to Vault KV for the app and, when a webhook is set, announced to it with a single-use wrapping token.</p>
      <ErrorBox error={hook.error} />
      <ErrorBox error={error} />
      {notice && <Notice kind="ok">{notice}</Notice>}
      {hook.data !== undefined && (
        <>
          {h ? (
            <KV
              items={[
                ['Webhook', <code>{h.url}</code>],
                ['Set', <Time iso={h.updatedAt} />],
                ['Last delivery', h.lastDelivery ? `${h.lastDelivery.state} for key ${h.lastDelivery.keyId} (${h.lastDelivery.attempts} attempt(s))` : '—'],
              ]}
            />
          ) : (
            <p>No webhook is set for this app.</p>
          )}
          <div class="toolbar">
            <button type="button" onClick={() => setEditing(true)}>
              {h ? 'Change the webhook…' : 'Set a webhook…'}
            </button>
            {h && (
              <>
                <button type="button" onClick={() => void sendTest()}>
                  Send a test event
                </button>
                <button type="button" class="danger" onClick={() => setRemoving(true)}>
                  Remove the webhook…
                </button>
              </>
            )}
          </div>
        </>
      )}
      <h3>History</h3>
      <ErrorBox error={history.error} />
      {history.data && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Delivery history">
          <table>
            <caption class="sr-only">Deliveries of {appId}</caption>
            <THead cols={['Time', 'Event', 'Channel', 'Status', 'Key', 'Details']} />
            <tbody>
              {history.data.items.length === 0 && (
                <tr>
                  <td colSpan={6}>No deliveries in the last 30 days.</td>
                </tr>
              )}
              {history.data.items.map((d, i) => (
                <tr key={`${d.at}-${i}`}>
                  <td>
                    <Time iso={d.at} relative={false} />
                  </td>
                  <td>
                    <code>{d.event}</code>
                    {d.trigger ? ` (${d.trigger})` : ''}
                  </td>
                  <td>{d.channel}</td>
                  <td>{d.status}</td>
                  <td class="mono">{d.keyId ? <a href={href(['keys', d.keyId])}>{d.keyId}</a> : '—'}</td>
                  <td class="small">{[d.httpStatus && `HTTP ${d.httpStatus}`, d.latencyMs !== undefined && `${d.latencyMs} ms`, d.error, d.detail].filter(Boolean).join(' · ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <SetWebhookDialog appId={appId} open={editing} onClose={(changed) => (setEditing(false), changed && hook.reload())} />
      <Dialog open={removing} title={`Remove ${appId}'s webhook?`} onClose={() => setRemoving(false)}>
        <form onSubmit={(e) => void remove(e)}>
          <p>Rotated keys are then delivered to Vault KV only.</p>
          <FormActions kind="danger" onCancel={() => setRemoving(false)} cancelFirst>Remove the webhook</FormActions>
        </form>
      </Dialog>
    </section>
  );
}

function SetWebhookDialog({ appId, open, onClose }: { appId: string; open: boolean; onClose: (changed: boolean) => void }) {
  const [url, setUrl] = useState('');
  const [error, setError] = useState<unknown>();
  const [result, setResult] = useState<Schemas['WebhookSecretResponse'] | null>(null);
  const close = () => {
    const changed = result !== null;
    setResult(null);
    setUrl('');
    setError(undefined);
    onClose(changed);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      setResult((await call<Schemas['WebhookSecretResponse']>('PUT', `/v1/apps/${seg(appId)}/webhook`, { body: { url: url.trim() } })).body);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Dialog open={open} title={result ? 'Webhook set' : `Webhook of ${appId}`} onClose={close} dismissable={!result}>
      {result ? (
        <div>
          <Notice kind="warn">
            The signing secret is shown once. The receiver checks each event's <code>{result.signatureHeader}</code> header with it.
          </Notice>
          <SecretField id="webhook-secret" label="Signing secret" value={result.secret} />
          <ForgetButton onClick={close} />
        </div>
      ) : (
        <form onSubmit={(e) => void submit(e)}>
          <div class="field">
            <label for="webhook-url">Receiver URL (https)</label>
            <input id="webhook-url" type="url" required value={url} onInput={(e) => setUrl((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <ErrorBox error={error} />
          <FormActions onCancel={close}>Save</FormActions>
        </form>
      )}
    </Dialog>
  );
}

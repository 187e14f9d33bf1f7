import { useRef, useState } from 'preact/hooks';
import { call, Cert, CertDetail, get, IssuedCert, seg } from '../api';
import { href } from '../router';
import { Dialog, downloadText, ErrorBox, FormActions, KV, List, Notice, Pager, splitList, StateBadge, THead, Time, useFields, useFocusHeading, useLoad, usePager } from '../ui';

/** The API's cap on a CSR (PEM characters). */
const CSR_MAX_BYTES = 8192;

/** Download the CA chain (public: GET /v1/certs/ca needs no credential). */
export async function downloadCa(): Promise<void> {
  const res = await call<string>('GET', '/v1/certs/ca', { headers: { accept: 'application/x-pem-file' } });
  downloadText('latchkey-ca.pem', String(res.body));
}

/** An app's certificates: list, issue (PEM and key downloaded once), submit a CSR, download the CA. */
export function AppCerts({ appId }: { appId: string }) {
  const pager = usePager(appId);
  const certs = useLoad(() => get<{ items: Cert[]; nextCursor: string | null }>('/v1/certs', { appId, limit: 25, cursor: pager.cursor }), [appId, pager.cursor]);
  const [mode, setMode] = useState<'issue' | 'csr' | null>(null);
  const [caError, setCaError] = useState<unknown>();
  return (
    <section aria-labelledby="certs-h">
      <h2 id="certs-h">Certificates</h2>
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => setMode('issue')}>
          Issue a certificate
        </button>
        <button type="button" onClick={() => setMode('csr')}>
          Sign a CSR
        </button>
        <button type="button" onClick={() => downloadCa().catch(setCaError)}>
          Download the CA chain
        </button>
      </div>
      <ErrorBox error={caError} />
      <ErrorBox error={certs.error} />
      {certs.loading && <p aria-live="polite">Loading…</p>}
      {certs.data && (
        <>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Certificates">
            <table>
              <caption class="sr-only">Certificates of {appId}</caption>
              <THead cols={['Common name', 'Serial', 'State', 'Expires', 'Renews', 'Source']} />
              <tbody>
                {certs.data.items.length === 0 && (
                  <tr>
                    <td colSpan={6}>No certificates.</td>
                  </tr>
                )}
                {certs.data.items.map((c) => (
                  <tr key={c.serial}>
                    <td>
                      <a href={href(['certs', c.serial])}>{c.commonName}</a>
                    </td>
                    <td class="mono small">{c.serial}</td>
                    <td>
                      <StateBadge state={c.state} />
                    </td>
                    <td>
                      <Time iso={c.expiresAt} />
                    </td>
                    <td>{c.autoRenew ? <Time iso={c.renewAt} /> : <span class="muted">manual</span>}</td>
                    <td>{c.source}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager label="certificates" page={pager.page} nextCursor={certs.data.nextCursor} onNext={pager.next} onPrev={pager.prev} />
        </>
      )}
      <IssueDialog appId={appId} mode={mode} onClose={() => (setMode(null), certs.reload())} />
    </section>
  );
}

/** Issue or sign: the result's PEMs are offered as downloads from memory, then dropped when the dialog closes. */
function IssueDialog({ appId, mode, onClose }: { appId: string; mode: 'issue' | 'csr' | null; onClose: () => void }) {
  const blank = { cn: '', uris: '', ips: '', ttl: '', autoRenew: false, csr: '' };
  const { f, bind: set, setF, reset } = useFields(blank);
  const [error, setError] = useState<unknown>();
  const [issued, setIssued] = useState<IssuedCert | null>(null);
  const [busy, setBusy] = useState(false);
  const close = () => {
    setIssued(null);
    reset();
    setError(undefined);
    onClose();
  };
  const readFile = async (e: Event) => {
    const file = (e.currentTarget as HTMLInputElement).files?.[0];
    if (!file) return;
    // The API takes at most 8 KiB of PEM; a cut PEM would only be refused as malformed, so say why instead.
    if (file.size > CSR_MAX_BYTES) return setError(new Error(`The file is ${file.size} bytes; a CSR is at most ${CSR_MAX_BYTES} bytes of PEM`));
    setF({ ...f, csr: await file.text() });
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const body: Record<string, unknown> = { appId, autoRenew: f.autoRenew };
    if (f.cn.trim()) body.commonName = f.cn.trim();
    if (f.uris.trim()) body.uriSans = splitList(f.uris);
    if (f.ips.trim()) body.ipSans = splitList(f.ips);
    if (f.ttl.trim()) body.ttl = f.ttl.trim();
    if (mode === 'csr') body.csr = f.csr.trim();
    setBusy(true);
    try {
      setIssued((await call<IssuedCert>('POST', '/v1/certs', { body })).body);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={mode !== null} title={issued ? 'Certificate issued' : mode === 'csr' ? `Sign a CSR for ${appId}` : `Issue a certificate for ${appId}`} onClose={close} dismissable={!issued?.privateKey}>
      {issued ? (
        <IssuedFiles cert={issued} lead="Serial" onDone={close} />
      ) : (
        <form onSubmit={(e) => void submit(e)}>
          {mode === 'csr' && (
            <>
              <div class="field">
                <label for="csr-pem">CSR (PEM)</label>
                <textarea id="csr-pem" rows={6} class="mono" value={f.csr} onInput={set('csr')} required />
              </div>
              <div class="field">
                <label for="csr-file">…or read it from a file</label>
                <input id="csr-file" type="file" accept=".csr,.pem,.req,text/plain" onChange={(e) => void readFile(e)} />
              </div>
            </>
          )}
          <div class="field">
            <label for="cert-cn">Common name{mode === 'csr' ? ' (optional: taken from the CSR)' : ''}</label>
            <input id="cert-cn" value={f.cn} onInput={set('cn')} required={mode !== 'csr'} maxLength={64} />
          </div>
          <div class="field">
            <label for="cert-uris">URI SANs (optional, comma separated)</label>
            <input id="cert-uris" value={f.uris} onInput={set('uris')} />
          </div>
          <div class="field">
            <label for="cert-ips">IP SANs (optional, comma separated)</label>
            <input id="cert-ips" value={f.ips} onInput={set('ips')} />
          </div>
          <div class="field">
            <label for="cert-ttl">TTL (optional, e.g. 72h)</label>
            <input id="cert-ttl" value={f.ttl} onInput={set('ttl')} />
          </div>
          <div class="field check">
            <input id="cert-autorenew" type="checkbox" checked={f.autoRenew} onChange={set('autoRenew')} />
            <label for="cert-autorenew">Renew automatically at two thirds of its lifetime</label>
          </div>
          <ErrorBox error={error} />
          <FormActions disabled={busy} onCancel={close}>{mode === 'csr' ? 'Sign' : 'Issue'}</FormActions>
        </form>
      )}
    </Dialog>
  );
}

/**
 * A certificate just issued, signed or renewed: its PEM with the chain, and the private key when Vault
 * generated one, offered once as downloads built in memory. Done drops them with the dialog.
 */
function IssuedFiles({ cert, lead, onDone }: { cert: IssuedCert; lead: string; onDone: () => void }) {
  const [downloaded, setDownloaded] = useState(false);
  return (
    <div>
      <p>
        {lead} <code>{cert.serial}</code>, expires <Time iso={cert.expiresAt} />.
      </p>
      {cert.privateKey && <Notice kind="warn">The private key is offered once: download it now. latchkey does not keep it.</Notice>}
      <div class="actions">
        <button type="button" onClick={() => downloadText(`${cert.commonName}.pem`, [cert.certificate, ...cert.caChain].join('\n'))}>
          Download certificate and chain
        </button>
        {cert.privateKey && (
          <button
            type="button"
            onClick={() => {
              downloadText(`${cert.commonName}.key`, cert.privateKey!);
              setDownloaded(true);
            }}
          >
            Download private key
          </button>
        )}
      </div>
      {downloaded && <p class="small">Private key downloaded.</p>}
      <button type="button" class="primary" onClick={onDone}>
        Done (forget the key)
      </button>
    </div>
  );
}

/** One certificate: details, PEM download, renew and revoke. */
export function CertPage({ serial }: { serial: string }) {
  const h1 = useRef<HTMLHeadingElement>(null);
  const cert = useLoad(() => get<CertDetail>(`/v1/certs/${seg(serial)}`), [serial]);
  useFocusHeading(h1, [serial]);
  const [action, setAction] = useState<'renew' | 'revoke' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  // Empty: the API's default (the old certificate stays valid until it expires); 0s revokes it at once.
  const [grace, setGrace] = useState('');
  const [ttl, setTtl] = useState('');
  const [csr, setCsr] = useState('');
  const [renewed, setRenewed] = useState<IssuedCert | null>(null);
  const [busy, setBusy] = useState(false);
  const c = cert.data;
  const renew = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    setBusy(true);
    const body: Record<string, string> = {};
    if (grace.trim()) body.grace = grace.trim();
    if (ttl.trim()) body.ttl = ttl.trim();
    if (csr.trim()) body.csr = csr.trim();
    try {
      setRenewed((await call<IssuedCert>('POST', `/v1/certs/${seg(serial)}/renew`, { body })).body);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    setBusy(true);
    try {
      await call('DELETE', `/v1/certs/${seg(serial)}`);
      setAction(null);
      setNotice(`Certificate ${serial} revoked.`);
      cert.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const closeRenew = () => {
    const r = renewed;
    setRenewed(null);
    setAction(null);
    setError(undefined);
    if (r) {
      setNotice(`Renewed: the new serial is ${r.serial}.`);
      cert.reload();
    }
  };
  return (
    <main id="main">
      <p class="crumbs">{c && <a href={href(['apps', c.appId, 'certs'])}>{c.appId}</a>} › certificate</p>
      <h1 ref={h1} tabIndex={-1}>
        {c ? c.commonName : 'Certificate'} {c && <StateBadge state={c.state} />}
      </h1>
      <ErrorBox error={cert.error} />
      {notice && <Notice kind="ok">{notice}</Notice>}
      {c && (
        <>
          <div class="toolbar">
            <button type="button" onClick={() => c.certificate && downloadText(`${c.commonName}.pem`, c.certificate)} disabled={!c.certificate}>
              Download certificate
            </button>
            <button type="button" onClick={() => setAction('renew')} disabled={c.state !== 'active' || !!c.successorSerial}>
              Renew
            </button>
            <button type="button" class="danger" onClick={() => setAction('revoke')} disabled={c.state !== 'active'}>
              Revoke…
            </button>
          </div>
          <KV
            items={[
              ['Serial', <code>{c.serial}</code>],
              ['Subject', c.subject],
              ['URI SANs', <List values={c.uriSans} />],
              ['IP SANs', <List values={c.ipSans} />],
              ['Valid from', <Time iso={c.notBefore} />],
              ['Expires', <Time iso={c.expiresAt} />],
              ['Renewal', c.autoRenew ? <Time iso={c.renewAt} /> : 'manual'],
              ['Key type', c.keyType],
              ['Source', c.source === 'csr' ? 'signed CSR (the client holds the key)' : 'issued (key generated by Vault, handed out once)'],
              ['Lineage', `${c.lineage}, generation ${c.generation}`],
              ['Previous', c.previousSerial ? <a href={href(['certs', c.previousSerial])}>{c.previousSerial}</a> : '—'],
              ['Successor', c.successorSerial ? <a href={href(['certs', c.successorSerial])}>{c.successorSerial}</a> : '—'],
              ['Revoked in Vault', c.live ? (c.live.revoked ? <Time iso={c.live.revokedAt} /> : 'no') : '—'],
            ]}
          />
          <Dialog open={action === 'renew'} title={renewed ? 'Certificate renewed' : `Renew ${c.commonName}`} onClose={closeRenew} dismissable={!renewed?.privateKey}>
            {renewed ? (
              <IssuedFiles cert={renewed} lead="New serial" onDone={closeRenew} />
            ) : (
              <form onSubmit={(e) => void renew(e)}>
                <div class="field">
                  <label for="cert-grace">Grace: revoke the old certificate after (e.g. 1h; empty: it stays valid until it expires; 0s: now)</label>
                  <input id="cert-grace" value={grace} onInput={(e) => setGrace((e.currentTarget as HTMLInputElement).value)} />
                </div>
                <div class="field">
                  <label for="cert-renew-ttl">TTL (optional, e.g. 72h)</label>
                  <input id="cert-renew-ttl" value={ttl} onInput={(e) => setTtl((e.currentTarget as HTMLInputElement).value)} />
                </div>
                {c.source === 'csr' && (
                  <div class="field">
                    <label for="cert-renew-csr">New CSR (PEM; optional: the CSR's key is the client's)</label>
                    <textarea id="cert-renew-csr" class="mono" rows={5} value={csr} onInput={(e) => setCsr((e.currentTarget as HTMLTextAreaElement).value)} />
                  </div>
                )}
                <ErrorBox error={error} />
                <FormActions disabled={busy} onCancel={closeRenew}>Renew</FormActions>
              </form>
            )}
          </Dialog>
          <Dialog open={action === 'revoke'} title={`Revoke ${c.commonName}?`} onClose={() => (setAction(null), setError(undefined))}>
            <form onSubmit={(e) => void revoke(e)}>
              <p>
                Certificate <code>{c.serial}</code> is revoked in Vault and refused by latchkey at once. Keys bound to it stop working.
              </p>
              <ErrorBox error={error} />
              <FormActions kind="danger" disabled={busy} onCancel={() => setAction(null)} cancelFirst>Revoke the certificate</FormActions>
            </form>
          </Dialog>
        </>
      )}
    </main>
  );
}

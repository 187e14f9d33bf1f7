/* eslint-disable @typescript-eslint/no-explicit-any */
/** Response bodies in tests are asserted field by field; `any` keeps those assertions readable. */
export async function jsonOf(res: Response): Promise<any> {
  return res.json();
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; bearer?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.token) headers['x-vault-token'] = opts.token;
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  const res = await fetch(`${base}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body, headers: res.headers };
}

/**
 * Every audit event matching `query` (e.g. `keyId=…&type=…`), following the cursor to the end: a page scans a
 * bounded part of the stream, which in a test run holds every test's Vault traffic, so one page may hold
 * fewer items than asked for (even none) and still carry a cursor.
 */
export async function auditEvents(base: string, token: string, query: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 500; page++) {
    const r = await call(base, 'GET', `/v1/audit/events?${query}&limit=500${cursor ? `&cursor=${cursor}` : ''}`, { token });
    if (r.status !== 200) throw new Error(`audit events: ${r.status} ${JSON.stringify(r.body)}`);
    items.push(...r.body.items);
    cursor = r.body.nextCursor;
    if (!cursor) return items;
  }
  throw new Error('audit events: more than 500 pages');
}

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

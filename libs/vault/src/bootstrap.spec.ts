import { markPolicy, policyState, POLICY_MARKER, renderAppManagerPolicy } from './bootstrap';

describe('bootstrap policy markers', () => {
  const body = 'path "latchkey/apps/a/keys" {\n  capabilities = ["read"]\n}\n';

  it('tells missing, identical, its own older text, pre-marker text and hand edits apart', () => {
    const text = markPolicy(body);
    expect(text.startsWith(POLICY_MARKER)).toBe(true);
    expect(policyState(null, text)).toBe('missing');
    expect(policyState(text, text)).toBe('same');
    expect(policyState(markPolicy(`${body}# older\n`), text)).toBe('ours');
    expect(policyState(body, text)).toBe('legacy');
    expect(policyState(`${text}path "x" {\n  capabilities = ["sudo"]\n}\n`, text)).toBe('edited');
    // Editing the marker line itself is an edit too.
    expect(policyState(text.replace(/sha256=[0-9a-f]{4}/, 'sha256=0000'), markPolicy(`${body}#`))).toBe('edited');
  });
});

describe('renderAppManagerPolicy', () => {
  const tpl = 'app {{app}}\n{{profile_blocks}}\nend {{app}}\n';

  it('one mint block per profile and sudo on the policies they hand out, never latchkey\'s own or root', () => {
    const out = renderAppManagerPolicy(tpl, 'acme', ['partner', 'default', 'partner'], ['orders-read', 'default', 'latchkey-operator', 'root', 'orders-read']);
    expect(out).toContain('app acme\n');
    expect(out).toContain('end acme\n');
    expect(out.match(/latchkey\/profiles\/partner\/keys/g)).toHaveLength(1);
    expect(out).toContain('path "latchkey/profiles/default/keys" {\n  capabilities = ["create"]\n}');
    expect(out).toContain('path "latchkey/policies/orders-read" {\n  capabilities = ["sudo"]\n}');
    expect(out).toContain('path "latchkey/policies/default"');
    expect(out).not.toContain('latchkey/policies/latchkey-operator');
    expect(out).not.toContain('latchkey/policies/root');
  });
});

import { bindingAccepts, certBindingOf, encodeCertLineage } from './cert-binding';

describe('certificate binding by lineage', () => {
  const S1 = 'aa:01';
  const S2 = 'bb:02';

  it('reads a key minted before lineages as bound to the lineage that starts at its serial', () => {
    expect(certBindingOf({ latchkey_cert: S1 })).toEqual({ serial: S1, lineage: S1, generation: 0 });
    expect(certBindingOf({})).toBeNull();
    expect(certBindingOf(undefined)).toBeNull();
  });

  it('reads the lineage and generation a key was minted with', () => {
    const meta = { latchkey_cert: S2, latchkey_cert_lineage: encodeCertLineage({ lineage: S1, generation: 1 }) };
    expect(certBindingOf(meta)).toEqual({ serial: S2, lineage: S1, generation: 1 });
  });

  it('accepts the bound certificate and its renewals, never a predecessor or another lineage', () => {
    const bound = { lineage: S1, generation: 1 };
    expect(bindingAccepts(bound, { lineage: S1, generation: 1 })).toBe(true);
    expect(bindingAccepts(bound, { lineage: S1, generation: 5 })).toBe(true);
    expect(bindingAccepts(bound, { lineage: S1, generation: 0 })).toBe(false);
    expect(bindingAccepts(bound, { lineage: S2, generation: 1 })).toBe(false);
  });

  it('fails closed on a lineage it cannot read', () => {
    const b = certBindingOf({ latchkey_cert: S1, latchkey_cert_lineage: 'garbage' })!;
    expect(b.serial).toBe(S1);
    expect(bindingAccepts(b, { lineage: S1, generation: 0 })).toBe(false);
    expect(bindingAccepts(b, { lineage: '', generation: 99 })).toBe(false);
  });
});

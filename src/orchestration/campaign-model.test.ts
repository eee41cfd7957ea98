import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignVariant, CONTROL, variantForBucket } from './campaign-model.ts';

const VARIANTS = [
  { name: 'A', weight: 20 },
  { name: 'B', weight: 30 },
  { name: 'C', weight: 50 },
];

describe('A/B split (issue 5, part 8)', () => {
  it('is within 1 % of the weights on 100,000 users, control group first', () => {
    const counts = new Map<string, number>();
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const arm = assignVariant('proj_1', 'cmp_spring', `user-${i}`, VARIANTS, 10);
      counts.set(arm, (counts.get(arm) ?? 0) + 1);
    }
    // 10 % control; the other 90 % split 20/30/50.
    const expected: Record<string, number> = { [CONTROL]: 0.1, A: 0.18, B: 0.27, C: 0.45 };
    for (const [arm, share] of Object.entries(expected)) {
      const got = (counts.get(arm) ?? 0) / n;
      assert.ok(Math.abs(got - share) < 0.01, `${arm}: ${(got * 100).toFixed(2)} % vs ${share * 100} %`);
    }
  });

  it('is stable per user, and independent between campaigns', () => {
    let same = 0;
    for (let i = 0; i < 10_000; i++) {
      const a = assignVariant('proj_1', 'cmp_one', `u${i}`, VARIANTS, 0);
      assert.equal(assignVariant('proj_1', 'cmp_one', `u${i}`, VARIANTS, 0), a, 'the same user always gets the same arm');
      if (assignVariant('proj_1', 'cmp_two', `u${i}`, VARIANTS, 0) === a) same++;
    }
    // Independent assignments agree with probability 0.2² + 0.3² + 0.5² = 0.38.
    assert.ok(Math.abs(same / 10_000 - 0.38) < 0.02, `agreement ${same / 10_000}`);
  });

  it('maps bucket edges as documented', () => {
    assert.equal(variantForBucket(0, VARIANTS, 10), CONTROL);
    assert.equal(variantForBucket(9.999, VARIANTS, 10), CONTROL);
    assert.equal(variantForBucket(10, VARIANTS, 10), 'A');
    assert.equal(variantForBucket(27.999, VARIANTS, 10), 'A');
    assert.equal(variantForBucket(28, VARIANTS, 10), 'B');
    assert.equal(variantForBucket(99.999, VARIANTS, 10), 'C');
    assert.equal(variantForBucket(50, [{ name: 'only', weight: 100 }], 0), 'only');
  });
});

import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { checkIpv6Subnet, formatIpv6, ipKey, parseIpv6 } from '../src/keys.js';

describe('ipKey', () => {
  it('keeps IPv4 as it is', () => {
    expect(ipKey('203.0.113.7')).toBe('203.0.113.7');
    expect(ipKey('127.0.0.1', false)).toBe('127.0.0.1');
  });

  it('counts IPv4-mapped and NAT64 addresses as the IPv4 address, in every spelling', () => {
    for (const ip of [
      '::ffff:203.0.113.7',
      '::FFFF:203.0.113.7',
      '::ffff:cb00:7107',
      '0:0:0:0:0:ffff:cb00:7107',
      '64:ff9b::203.0.113.7',
      '64:ff9b::cb00:7107',
    ]) {
      expect(ipKey(ip), ip).toBe('203.0.113.7');
      expect(ipKey(ip, false), ip).toBe('203.0.113.7');
      expect(ipKey(ip, 128), ip).toBe('203.0.113.7');
    }
  });

  it('groups IPv6 by /56 by default, in RFC 5952 form with the prefix length', () => {
    expect(ipKey('2001:db8:1:1::1')).toBe('2001:db8:1::/56');
    expect(ipKey('2001:0DB8:0001:00ff:ffff:ffff:ffff:ffff')).toBe('2001:db8:1::/56');
    expect(ipKey('2001:db8:1:100::1')).toBe('2001:db8:1:100::/56');
    expect(ipKey('::1')).toBe('::/56');
    expect(ipKey('fe80::1%eth0', 64)).toBe('fe80::/64');
  });

  it('puts every address of one /56 in one bucket and neighbouring /56s in others', () => {
    const keys = new Set<string>();
    // 4096 addresses spread over the low 72 bits of one /56
    for (let i = 0; i < 4096; i++) {
      const g3 = (i * 37) & 0xff;
      keys.add(
        ipKey(
          `2001:db8:abcd:12${g3.toString(16).padStart(2, '0')}:${((i * 7919) & 0xffff).toString(16)}:${i.toString(16)}:${((i * 31) & 0xffff).toString(16)}:1`,
        ) ?? '',
      );
    }
    expect([...keys]).toEqual(['2001:db8:abcd:1200::/56']);
    const neighbours = new Set<string>();
    for (let g = 0; g < 256; g++) neighbours.add(ipKey(`2001:db8:abcd:${(g << 8).toString(16)}::1`) ?? '');
    expect(neighbours.size).toBe(256);
  });

  it('honours other prefix lengths, including ones that cut a group', () => {
    expect(ipKey('2001:db8:1234:5678:9abc::1', 64)).toBe('2001:db8:1234:5678::/64');
    expect(ipKey('2001:db8:1234:5678:9abc::1', 60)).toBe('2001:db8:1234:5670::/60');
    expect(ipKey('2001:db8:1234:5678:9abc::1', 1)).toBe('::/1');
    expect(ipKey('ffff:db8:1234:5678:9abc::1', 1)).toBe('8000::/1');
    expect(ipKey('2001:db8:1234:5678:9abc:def0:1:2', 127)).toBe('2001:db8:1234:5678:9abc:def0:1:2/127');
    expect(ipKey('2001:db8:1234:5678:9abc:def0:1:3', 127)).toBe('2001:db8:1234:5678:9abc:def0:1:2/127');
    expect(ipKey('2001:DB8::0001', false)).toBe('2001:db8::1');
    expect(ipKey('2001:db8::1', 128)).toBe('2001:db8::1');
  });

  it('returns undefined for a missing address, so no request lands in a shared bucket', () => {
    expect(ipKey(undefined)).toBeUndefined();
    expect(ipKey(null)).toBeUndefined();
    expect(ipKey('')).toBeUndefined();
  });

  it('keeps a string that is not an address as its own key', () => {
    expect(ipKey('unknown')).toBe('unknown');
    expect(ipKey('1:2:3')).toBe('1:2:3');
    expect(ipKey('::ffff:1.2.3.999')).toBe('::ffff:1.2.3.999');
    expect(ipKey('1::2::3')).toBe('1::2::3');
  });

  it('parses and formats like Node on many random addresses', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let n = 0; n < 2000; n++) {
      const groups = Array.from({ length: 8 }, () => (random() % 3 === 0 ? 0 : random() & 0xffff));
      const text = formatIpv6(groups);
      expect(isIPv6(text), text).toBe(true);
      expect(parseIpv6(text)).toEqual(groups);
      expect(parseIpv6(groups.map((g) => g.toString(16).padStart(4, '0')).join(':'))).toEqual(groups);
    }
  });

  it('accepts exactly the strings Node accepts as IPv6, on random text', () => {
    const alphabet = '0123456789abcdefABCDEF:::::....';
    let seed = 1;
    const random = (n: number) => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    let valid = 0;
    for (let n = 0; n < 50_000; n++) {
      let text = '';
      const length = 2 + random(24);
      for (let i = 0; i < length; i++) text += alphabet[random(alphabet.length)];
      const groups = parseIpv6(text);
      expect(groups !== undefined, text).toBe(isIPv6(text));
      if (groups !== undefined) {
        valid++;
        expect(parseIpv6(formatIpv6(groups)), text).toEqual(groups);
      }
    }
    expect(valid).toBeGreaterThan(100);
  });

  it('formats the longest zero run as :: and leaves single zero groups alone (RFC 5952)', () => {
    expect(formatIpv6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1])).toBe('2001:db8:0:1::1');
    expect(formatIpv6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6([0, 0, 0, 0, 0, 0, 0, 0])).toBe('::');
    expect(formatIpv6([1, 0, 2, 0, 3, 0, 4, 0])).toBe('1:0:2:0:3:0:4:0');
  });
});

describe('checkIpv6Subnet', () => {
  it('defaults to 56 and accepts 1-128 or false', () => {
    expect(checkIpv6Subnet(undefined)).toBe(56);
    expect(checkIpv6Subnet(false)).toBe(false);
    expect(checkIpv6Subnet(64)).toBe(64);
    for (const bad of [0, 129, 56.5, '56', true, null]) {
      expect(() => checkIpv6Subnet(bad)).toThrowError(
        /FLOODGATE_INVALID_OPTION: ipv6Subnet .* must be a prefix length from 1 to 128/,
      );
    }
  });
});

/**
 * What a request says about the copy its client holds (src/http/conditions.ts): If-None-Match
 * as RFC 9110 13.1.2 and 8.8.3 define it, the `wait` preference as RFC 7240 defines it; the
 * RFCs' own examples, and lists generated from their grammar.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ifNoneMatch, MAX_WAIT, preferredWait } from "../../src/http/conditions";

const matching = (header: string | null, etags: string[]) => {
  const matches = ifNoneMatch(header);
  return matches && etags.filter((etag) => matches(etag));
};

describe("If-None-Match (RFC 9110 13.1.2)", () => {
  test("absent: no condition; the RFC's examples: one tag, weak, a list, *", () => {
    const ours = ['"xyzzy"', '"r2d2xxxx"', '"c3piozzzz"', '"other"'];
    expect(matching(null, ours)).toBeUndefined();
    expect(matching('"xyzzy"', ours)).toEqual(['"xyzzy"']);
    expect(matching('W/"xyzzy"', ours)).toEqual(['"xyzzy"']);
    expect(matching('"xyzzy", "r2d2xxxx", "c3piozzzz"', ours)).toEqual(['"xyzzy"', '"r2d2xxxx"', '"c3piozzzz"']);
    expect(matching('W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"', ours)).toEqual(['"xyzzy"', '"r2d2xxxx"', '"c3piozzzz"']);
    expect(matching("*", ours)).toEqual(ours);
    expect(matching(" * ", ours)).toEqual(ours);
  });

  test("weak comparison (RFC 9110 8.8.3.2's table): W/ on either side is not compared, the opaque-tag is, exactly", () => {
    // Our ETags are strong; a client may send them back weak.
    expect(matching('W/"1"', ['"1"', '"2"'])).toEqual(['"1"']);
    expect(matching('"1"', ['"1"', '"2"'])).toEqual(['"1"']);
    expect(matching('W/"2"', ['"1"'])).toEqual([]);
    expect(matching('"A"', ['"a"'])).toEqual([]);
  });

  test("several header lines, as the Fetch API joins them; a comma inside a tag; empty members and spaces", () => {
    const headers = new Headers([["If-None-Match", '"a"'], ["If-None-Match", 'W/"b,c"']]);
    expect(matching(headers.get("if-none-match"), ['"a"', '"b,c"', '"b"', '"c"'])).toEqual(['"a"', '"b,c"']);
    expect(matching(' ,, "a" ,\t"b"\t, ', ['"a"', '"b"'])).toEqual(['"a"', '"b"']);
  });

  test("members that are not entity-tags match nothing; the others still count", () => {
    const etags = ['"a"', '"b"', "a", '"c"'];
    expect(matching('a, w/"b", "c"', etags)).toEqual(['"c"']);
    expect(matching('"a"x, "c"', etags)).toEqual(['"c"']);
    // An unclosed quote: a space is no etagc, so the member ends at the comma.
    expect(matching('"a, "c"', etags)).toEqual(['"c"']);
    expect(matching("", etags)).toEqual([]);
    // `*` is a field value of its own, not a member of a list.
    expect(matching('*, "c"', etags)).toEqual(['"c"']);
  });

  test("what a long poll keeps of a hostile header (16 KiB of distinct tags, Bun's largest) is about its size: a waiter costs a few KiB more, not hundreds", () => {
    const hostile = (n: number) => {
      const tags: string[] = [];
      for (let i = 0, length = 0; length < 16 * 1024; i++, length += tags.at(-1)!.length + 1) tags.push(`"${n}-${i.toString(36)}"`);
      // Flat, as Bun's Headers give it.
      return Buffer.from(tags.join(",")).toString("latin1");
    };
    const headers = Array.from({ length: 200 }, (_, n) => hostile(n));
    Bun.gc(true);
    const before = process.memoryUsage().heapUsed;
    const kept = headers.map((header) => ifNoneMatch(header)!);
    Bun.gc(true);
    const perWaiter = (process.memoryUsage().heapUsed - before) / kept.length;
    expect(kept.every((matches, n) => matches(`"${n}-0"`) && !matches(`"${n + 1}-0"`))).toBe(true);
    // A Set of its ~2,000 tags took ~210 KiB; one string of them, ~16.
    expect(perWaiter).toBeLessThan(48 * 1024);
  });

  test("any list the grammar allows: exactly its opaque-tags match", () => {
    // etagc = %x21 / %x23-7E / obs-text: every visible character but the double quote, a comma included.
    const etagc = fc.constantFrom(..."!#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\x80\xff".split(""));
    const opaque = fc.array(etagc, { maxLength: 6 }).map((chars) => `"${chars.join("")}"`);
    const ows = fc.constantFrom("", " ", "\t", "  ");
    const member = fc.record({ weak: fc.boolean(), tag: opaque, before: ows, after: ows });
    fc.assert(
      fc.property(fc.array(member, { minLength: 1, maxLength: 5 }), fc.array(fc.constantFrom("", " "), { maxLength: 2 }), opaque, (members, empties, other) => {
        const header = [...empties, ...members.map((m) => `${m.before}${m.weak ? "W/" : ""}${m.tag}${m.after}`)].join(",");
        const matches = ifNoneMatch(header)!;
        for (const m of members) expect(matches(m.tag)).toBe(true);
        expect(matches(other)).toBe(members.some((m) => m.tag === other));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("Prefer: wait (RFC 7240)", () => {
  test("delta-seconds, capped at 300; absent, malformed or 0: no wait", () => {
    const cases: [string | null, number][] = [
      [null, 0],
      ["wait=10", 10],
      ["wait=0", 0],
      ["wait=300", 300],
      ["wait=301", MAX_WAIT],
      ["wait=99999999999999999999999", MAX_WAIT],
      ["wait = 7", 7],
      ["wait\t=\t7", 7],
      ["wait=", 0],
      ["wait", 0],
      ["wait=-1", 0],
      ["wait=1.5", 0],
      ["wait=5s", 0],
      ['wait="5"', 0],
      ["wait=5=6", 0],
      ["waiting=5", 0],
      ["", 0],
    ];
    expect(cases.map(([header]) => [header, preferredWait(header)])).toEqual(cases);
  });

  test("among other preferences (RFC 7240's examples), names in any case, parameters ignored, several header lines", () => {
    const cases: [string, number][] = [
      ["respond-async, wait=100", 100],
      ["handling=lenient, return=minimal, WAIT=20", 20],
      ["Wait=20; foo=bar", 20],
      ["return=minimal; foo=\"some parameter\", wait=9", 9],
      [",, wait=3 ,", 3],
    ];
    expect(cases.map(([header]) => [header, preferredWait(header)])).toEqual(cases);
    expect(preferredWait(new Headers([["Prefer", "respond-async"], ["Prefer", "wait=12"]]).get("prefer"))).toBe(12);
  });

  test("only the first wait counts (RFC 7240 2), even when it is malformed", () => {
    expect(preferredWait("wait=5, wait=10")).toBe(5);
    expect(preferredWait("wait=x, wait=10")).toBe(0);
  });

  test("a hostile header as large as Bun lets in (16 KiB) is read in linear time: no request holds the event loop", () => {
    const size = 16 * 1024;
    const hostile = ["a" + " ".repeat(size) + "b", `wait${" ".repeat(size)}x`, `x${"\t".repeat(size)}=1`, ",".repeat(size), ";".repeat(size)];
    for (const header of hostile) {
      const started = performance.now();
      expect(preferredWait(header)).toBe(0);
      // Quadratic, the first took ~200 ms; linear, well under 1.
      expect(performance.now() - started).toBeLessThan(50);
    }
  });

  test("a comma or a wait inside another preference's quoted value is not a preference", () => {
    expect(preferredWait('foo="a, wait=5, b"')).toBe(0);
    expect(preferredWait('foo="a \\" wait=5, b", wait=8')).toBe(8);
    expect(preferredWait('foo; p="x,wait=5", wait=2')).toBe(2);
  });
});

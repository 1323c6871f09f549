// The range-shifting logic behind the decorations that follow the person's edits: hunks'
// added/removed ranges from the daemon's hunks, moved through edits, checked on examples and
// against random edits (seeded, so a failure repeats).
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Change, compare, hunkRanges, type Pos, type Tracked, track } from "../src/rangeTracking";

const at = (line: number, character: number): Pos => ({ line, character });
const edit = (start: Pos, end: Pos, text: string): Change => ({ range: { start, end }, text });
const added = (start: Pos, end: Pos): Tracked => ({ kind: "added", hunkId: "h", start, end });

test("a hunk's added runs and removed places on the proposed side", () => {
  const hunk = { id: "h1", header: "@@ -3,5 +3,5 @@", lines: [" a\n", "-b\n", "+B\n", "+B2\n", " c\n", "+d\n", "-e\n", " f\n"] };
  const ranges = hunkRanges(hunk, (line) => 10 + line);
  assert.deepEqual(ranges, [
    { kind: "removed", hunkId: "h1", start: at(3, 0), end: at(3, 0), count: 1 },
    { kind: "added", hunkId: "h1", start: at(3, 0), end: at(4, 14) },
    { kind: "added", hunkId: "h1", start: at(6, 0), end: at(6, 16) },
    { kind: "removed", hunkId: "h1", start: at(7, 0), end: at(7, 0), count: 1 },
  ]);
});

test("edits above move a hunk; edits below leave it; typing at its edges does not grow it", () => {
  const hunk = added(at(5, 0), at(6, 4));
  const moved = (change: Change) => track([hunk], [change])[0]!;
  assert.deepEqual(moved(edit(at(1, 0), at(1, 0), "x\ny\n")), added(at(7, 0), at(8, 4)));
  assert.deepEqual(moved(edit(at(1, 0), at(3, 0), "")), added(at(3, 0), at(4, 4)));
  assert.deepEqual(moved(edit(at(9, 0), at(9, 0), "x\n")), hunk);
  assert.deepEqual(moved(edit(at(5, 0), at(5, 0), "new line above\n")), added(at(6, 0), at(7, 4)));
  assert.deepEqual(moved(edit(at(6, 4), at(6, 4), "\n")), hunk); // Enter at its end: the new line is not the hunk's
  assert.deepEqual(moved(edit(at(5, 2), at(5, 2), "typed\nin\n")), added(at(5, 0), at(8, 4))); // typed inside: it grows
  assert.deepEqual(moved(edit(at(6, 1), at(6, 1), "ab")), added(at(5, 0), at(6, 6))); // on its last line
  assert.deepEqual(moved(edit(at(4, 0), at(7, 0), "z")), added(at(4, 0), at(4, 1))); // replaced whole: the replacement
});

test("a removed place is a point that moves with the line after it", () => {
  const place: Tracked = { kind: "removed", hunkId: "h", start: at(4, 0), end: at(4, 0), count: 2 };
  assert.deepEqual(track([place], [edit(at(4, 0), at(4, 0), "x\n")])[0]!.start, at(5, 0));
  assert.deepEqual(track([place], [edit(at(0, 0), at(2, 0), "")])[0]!.start, at(2, 0));
  assert.deepEqual(track([place], [edit(at(4, 3), at(4, 3), "\n\n")])[0]!.start, at(4, 0));
});

/** A seeded generator (mulberry32): the same edits on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function offset(lines: string[], p: Pos): number {
  return lines.slice(0, p.line).reduce((sum, line) => sum + line.length + 1, 0) + p.character;
}

function textOf(lines: string[], start: Pos, end: Pos): string {
  const all = lines.join("\n");
  return all.slice(offset(lines, start), offset(lines, end));
}

test("property: across random edits a range keeps its text unless an edit touches it, and stays in the document", () => {
  const next = random(17);
  const pick = (n: number) => Math.floor(next() * n);
  const words = ["", "a", "bc", "\n", "x\n", "\ny", "p\nq\nr", "\r\n"];
  let checked = 0;
  for (let round = 0; round < 300; round += 1) {
    let lines = Array.from({ length: 6 + pick(10) }, (_, i) => `line ${i} ${"z".repeat(pick(5))}`);
    const position = (): Pos => {
      const line = pick(lines.length);
      return at(line, pick(lines[line]!.length + 1));
    };
    const first = 1 + pick(lines.length - 2);
    const last = first + pick(lines.length - first);
    let ranges: Tracked[] = [
      added(at(first, 0), at(last, lines[last]!.length)),
      { kind: "removed", hunkId: "r", start: at(first, 0), end: at(first, 0), count: 1 },
    ];
    for (let step = 0; step < 8; step += 1) {
      let [a, b] = [position(), position()];
      if (compare(a, b) > 0) [a, b] = [b, a];
      const change = edit(a, b, words[pick(words.length)]!);
      const before = ranges.map((r) => textOf(lines, r.start, r.end));
      const all = lines.join("\n");
      lines = (all.slice(0, offset(lines, a)) + change.text + all.slice(offset(lines, b))).split(/\r\n|\r|\n/);
      const moved = track(ranges, [change]);
      moved.forEach((r, i) => {
        assert.ok(compare(r.start, r.end) <= 0, `start after end: ${JSON.stringify(r)}`);
        for (const p of [r.start, r.end]) {
          assert.ok(p.line < lines.length && p.character <= lines[p.line]!.length, `outside the document: ${JSON.stringify({ p, change, lines })}`);
        }
        const old = ranges[i]!;
        const apart = compare(b, old.start) < 0 || compare(a, old.end) > 0;
        if (apart) {
          assert.equal(textOf(lines, r.start, r.end), before[i], JSON.stringify({ old, change, r }));
          checked += 1;
        }
      });
      ranges = moved;
    }
  }
  assert.ok(checked > 1000, `enough edits apart from the ranges were checked: ${checked}`);
});

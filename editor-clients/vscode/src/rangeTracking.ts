/**
 * Where a hunk's added lines and removed places are in a document the person edits, kept in
 * place through their edits. Pure (no `vscode` API): the decorations module feeds it VS Code's
 * `contentChanges`, and the Node tests check it against random edits.
 */
import type { HunkView } from "./generated/protocol";
import { proposedStart } from "./reviewModel";

export interface Pos {
  line: number;
  character: number;
}

/**
 * `added`: the hunk's `+` lines, from `start` to `end` (the end of the last one); `removed`: the
 * place of its `-` lines on the proposed side, a point (`start` = `end`) before the line there.
 */
export interface Tracked {
  kind: "added" | "removed";
  hunkId: string;
  start: Pos;
  end: Pos;
  /** removed: how many lines were taken out there. */
  count?: number;
}

/** One of VS Code's `TextDocumentContentChangeEvent`s: `range` is replaced by `text`. */
export interface Change {
  range: { start: Pos; end: Pos };
  text: string;
}

export function compare(a: Pos, b: Pos): number {
  return a.line - b.line || a.character - b.character;
}

/** Where `text`, inserted at `from`, ends. */
function endOf(from: Pos, text: string): Pos {
  const lines = text.split(/\r\n|\r|\n/);
  const last = lines[lines.length - 1]!.length;
  return lines.length === 1 ? { line: from.line, character: from.character + last } : { line: from.line + lines.length - 1, character: last };
}

/**
 * `p` after `change`. Text typed exactly at `p` goes before it when `stickRight` (a range's
 * start, a removed place), after it otherwise (a range's end): typing at a hunk's edges never
 * grows it. A position inside replaced text goes to the replacement's start (`stickRight`) or
 * end, so the range keeps what replaced its own text.
 */
export function mapPos(p: Pos, change: Change, stickRight: boolean): Pos {
  const { start, end } = change.range;
  const before = compare(p, start);
  const after = compare(p, end);
  const insertion = compare(start, end) === 0;
  if (before < 0 || (before === 0 && !(insertion && stickRight))) return p;
  if (after > 0 || (after === 0 && (stickRight || !insertion))) {
    const inserted = endOf(start, change.text);
    if (p.line === end.line) return { line: inserted.line, character: inserted.character + (p.character - end.character) };
    return { line: p.line + (inserted.line - end.line), character: p.character };
  }
  return stickRight ? start : endOf(start, change.text);
}

/** The ranges after `changes`, applied in order (as VS Code applies one event's changes). */
export function track(ranges: Tracked[], changes: readonly Change[]): Tracked[] {
  return ranges.map((range) => {
    let { start, end } = range;
    const point = range.kind === "removed";
    for (const change of changes) {
      start = mapPos(start, change, true);
      end = point ? start : mapPos(end, change, false);
      if (compare(end, start) < 0) end = start;
    }
    return { ...range, start, end };
  });
}

/** A hunk's added runs and removed places on the proposed side, from its header and lines. */
export function hunkRanges(hunk: HunkView, lineLength: (line: number) => number): Tracked[] {
  const out: Tracked[] = [];
  let line = proposedStart(hunk);
  let run: number | undefined;
  let removed = 0;
  const close = () => {
    if (run !== undefined) out.push({ kind: "added", hunkId: hunk.id, start: { line: run, character: 0 }, end: { line: line - 1, character: lineLength(line - 1) } });
    if (removed > 0) out.push({ kind: "removed", hunkId: hunk.id, start: { line, character: 0 }, end: { line, character: 0 }, count: removed });
    run = undefined;
    removed = 0;
  };
  for (const text of hunk.lines) {
    const sign = text[0];
    if (sign === "+") {
      if (removed > 0 && run === undefined) close();
      run ??= line;
      line += 1;
    } else if (sign === "-") {
      if (run !== undefined) close();
      removed += 1;
    } else if (sign === " ") {
      close();
      line += 1;
    }
  }
  close();
  return out;
}

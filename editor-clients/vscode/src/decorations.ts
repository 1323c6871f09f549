/**
 * Added lines and removed places of each hunk, decorated in the proposed side and in the run's
 * worktree file, and kept in place while the person edits that file (rangeTracking.ts shifts
 * them through each change). A review the daemon sends again re-anchors them, unless the
 * document has unsaved edits (then the tracked ranges are what matches its text).
 */
import { isAbsolute, relative, sep } from "node:path";
import * as vscode from "vscode";
import type { FileView } from "./generated/protocol";
import { compare, hunkRanges, type Tracked, track } from "./rangeTracking";
import { parseSideUri, type Reviews } from "./reviewDocs";
import { plainDiff } from "./reviewModel";

/** Which run's file a document shows: a proposed side, or a worktree file (resolved by the extension). */
export type FileOf = (document: vscode.TextDocument) => { runId: string; path: string } | undefined;

/** `file`'s path in the worktree, as the review names it ("/"-separated); undefined outside it. */
export function inWorktree(worktree: string, file: string): string | undefined {
  const path = relative(worktree, file);
  const outside = !path || path === ".." || path.startsWith(`..${sep}`) || isAbsolute(path);
  return outside ? undefined : path.split(sep).join("/");
}

export class HunkDecorations implements vscode.Disposable {
  readonly added = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor("diffEditor.insertedLineBackground"),
  });
  readonly removed = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    borderColor: new vscode.ThemeColor("editorGutter.deletedBackground"),
    borderStyle: "solid",
    borderWidth: "2px 0 0 0",
  });
  private readonly tracked = new Map<string, Tracked[]>();

  constructor(
    private readonly reviews: Reviews,
    private readonly worktreeFile: FileOf = () => undefined,
  ) {}

  private fileOf(document: vscode.TextDocument): { runId: string; file: FileView } | undefined {
    const side = parseSideUri(document.uri);
    const where = side?.side === "proposed" ? side : side ? undefined : this.worktreeFile(document);
    if (!where) return undefined;
    const file = this.reviews.get(where.runId)?.files.find((f) => f.path === where.path);
    return file && !plainDiff(file) ? { runId: where.runId, file } : undefined;
  }

  /** The ranges of a document: tracked since its last anchoring, else anchored at the review's hunks. */
  rangesOf(document: vscode.TextDocument): Tracked[] {
    const key = document.uri.toString();
    const known = this.tracked.get(key);
    if (known) return known;
    const found = this.fileOf(document);
    if (!found) return [];
    const length = (line: number) => (line >= 0 && line < document.lineCount ? document.lineAt(line).text.length : 0);
    const ranges = found.file.hunks.flatMap((hunk) => hunkRanges(hunk, length));
    this.tracked.set(key, ranges);
    return ranges;
  }

  show(editor: vscode.TextEditor): void {
    const document = editor.document;
    const ranges = this.rangesOf(document);
    const last = Math.max(0, document.lineCount - 1);
    const range = (r: Tracked) => {
      const line = Math.min(r.start.line, last); // removed at the end of the file: on its last line
      return compare(r.end, r.start) === 0 ? new vscode.Range(line, 0, line, 0) : new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
    };
    editor.setDecorations(this.added, ranges.filter((r) => r.kind === "added").map(range));
    editor.setDecorations(this.removed, ranges.filter((r) => r.kind === "removed").map(range));
  }

  /** The person edited a document: its ranges move with the text. */
  changed(event: vscode.TextDocumentChangeEvent): void {
    const key = event.document.uri.toString();
    const known = this.tracked.get(key);
    if (!known || event.contentChanges.length === 0) return;
    this.tracked.set(key, track(known, event.contentChanges));
    vscode.window.visibleTextEditors.filter((e) => e.document.uri.toString() === key).forEach((e) => this.show(e));
  }

  /** The reviews were fetched again: re-anchor every document without unsaved edits. */
  refresh(): void {
    const dirty = new Set(vscode.workspace.textDocuments.filter((d) => d.isDirty).map((d) => d.uri.toString()));
    for (const key of [...this.tracked.keys()]) if (!dirty.has(key)) this.tracked.delete(key);
    vscode.window.visibleTextEditors.forEach((editor) => this.show(editor));
  }

  dispose(): void {
    this.added.dispose();
    this.removed.dispose();
  }
}

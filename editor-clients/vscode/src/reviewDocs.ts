/**
 * The two sides of a file under review, served from `locus/review/content` through a content
 * provider (`locus-review:` URIs), so `vscode.diff` shows exactly the daemon's bytes; and the
 * per-hunk CodeLens (Accept / Reject… / Edit…) on the proposed side; binaries and big files
 * (reviewModel.plainDiff) get one Accept / Reject for the whole file instead.
 */
import * as vscode from "vscode";
import type { FileContent, FileView, ReviewView } from "./generated/protocol";
import { firstChange, plainDiff } from "./reviewModel";

export const SCHEME = "locus-review";
export type Side = "base" | "proposed";

export function sideUri(runId: string, path: string, side: Side): vscode.Uri {
  const query = new URLSearchParams({ run: runId, path, side }).toString();
  // The path part is only for the tab title; the query says what to fetch.
  return vscode.Uri.from({ scheme: SCHEME, path: `/${path.split("/").pop() ?? "file"}`, query });
}

export function parseSideUri(uri: vscode.Uri): { runId: string; path: string; side: Side } | undefined {
  const query = new URLSearchParams(uri.query);
  const runId = query.get("run");
  const path = query.get("path");
  const side = query.get("side");
  if (!runId || path === null || (side !== "base" && side !== "proposed")) return undefined;
  return { runId, path, side };
}

export type ContentSource = (runId: string, path: string) => Promise<FileContent>;

/** What a binary file's side shows instead of its bytes decoded as text. */
export function binaryText(file: FileView, side: Side): string {
  const absent = side === "base" ? file.status === "added" : file.status === "deleted";
  return absent ? "" : `(binary file, ${side === "base" ? "before" : "after"} the change: not shown as text; accept or reject the whole file)\n`;
}

export class ReviewContent implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly source: ContentSource,
    private readonly reviews: Reviews = new Map(),
  ) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const parsed = parseSideUri(uri);
    if (!parsed) return "";
    const file = this.reviews.get(parsed.runId)?.files.find((f) => f.path === parsed.path);
    if (file?.binary) return binaryText(file, parsed.side);
    const content = await this.source(parsed.runId, parsed.path);
    return (parsed.side === "base" ? content.base : content.proposed) ?? "";
  }

  refresh(uri: vscode.Uri): void {
    this.changed.fire(uri);
  }
}

/** Where the reviews stand, as the daemon last said (by run id). */
export type Reviews = Map<string, ReviewView>;

export class HunkLenses implements vscode.CodeLensProvider {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;

  constructor(private readonly reviews: Reviews) {}

  refresh(): void {
    this.changed.fire();
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const parsed = parseSideUri(document.uri);
    if (!parsed || parsed.side !== "proposed") return [];
    const view = this.reviews.get(parsed.runId);
    const file = view?.files.find((f) => f.path === parsed.path);
    if (!view || !file) return [];
    if (plainDiff(file)) {
      // A binary or a big file: decided whole, from its first line.
      const range = new vscode.Range(0, 0, 0, 0);
      const target = { runId: parsed.runId, path: parsed.path };
      const state = file.decision ? `${file.decision.action}ed · ` : "";
      return [
        new vscode.CodeLens(range, { title: `${state}Accept file`, command: "locus.acceptFile", arguments: [target] }),
        new vscode.CodeLens(range, { title: "Reject file…", command: "locus.rejectFile", arguments: [target] }),
      ];
    }
    return file.hunks.flatMap((hunk) => {
      const line = Math.min(firstChange(hunk), Math.max(0, document.lineCount - 1));
      const range = new vscode.Range(line, 0, line, 0);
      const target = { runId: parsed.runId, path: parsed.path, hunkId: hunk.id };
      const state = hunk.decision ? `${hunk.decision.action}ed · ` : "";
      return [
        new vscode.CodeLens(range, { title: `${state}Accept`, command: "locus.acceptHunk", arguments: [target] }),
        new vscode.CodeLens(range, { title: "Reject…", command: "locus.rejectHunk", arguments: [target] }),
        new vscode.CodeLens(range, { title: "Edit…", command: "locus.editHunk", arguments: [target] }),
      ];
    });
  }
}

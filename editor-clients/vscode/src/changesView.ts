/**
 * A run's changes in one editor: VS Code's multi-file changes view (`vscode.changes`, VS Code
 * 1.86 and later) with each file's base and proposed sides from the content provider; on an
 * older editor, or if the command fails, one `vscode.diff` per file.
 */
import * as vscode from "vscode";
import type { ReviewView } from "./generated/protocol";
import { sideUri } from "./reviewDocs";

/** Whether this VS Code has `vscode.changes` (1.86+). */
export function hasChangesView(version: string): boolean {
  const [major = 0, minor = 0] = version.split(".").map((part) => Number.parseInt(part, 10) || 0);
  return major > 1 || (major === 1 && minor >= 86);
}

/** [label, base, proposed] per file; an added file has no base side, a deleted one no proposed side. */
export function changeTriples(runId: string, view: ReviewView): [vscode.Uri, vscode.Uri | undefined, vscode.Uri | undefined][] {
  return view.files.map((file) => {
    const proposed = sideUri(runId, file.path, "proposed");
    return [
      proposed,
      file.status === "added" ? undefined : sideUri(runId, file.path, "base"),
      file.status === "deleted" ? undefined : proposed,
    ];
  });
}

export function diffTitle(path: string): string {
  return `Locus review: ${path}`;
}

export async function openChanges(runId: string, title: string, view: ReviewView, version = vscode.version): Promise<"changes" | "diff"> {
  if (hasChangesView(version)) {
    try {
      await vscode.commands.executeCommand("vscode.changes", `Locus review: ${title}`, changeTriples(runId, view));
      return "changes";
    } catch {
      // fall back to one diff per file below
    }
  }
  for (const file of view.files) {
    const base = sideUri(runId, file.path, "base");
    const proposed = sideUri(runId, file.path, "proposed");
    await vscode.commands.executeCommand("vscode.diff", base, proposed, diffTitle(file.path), { preview: false });
  }
  return "diff";
}

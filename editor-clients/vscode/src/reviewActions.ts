/**
 * Review decisions from the editor. Every decision carries the revision the person saw; when
 * the daemon says it is stale the review is fetched again and shown, and nothing is resent.
 */
import * as vscode from "vscode";
import type { DecisionIn, LocusClient, ReviewView, Run } from "./client";
import { editedLines, editText } from "./reviewModel";
import type { Reviews } from "./reviewDocs";

export interface HunkTarget {
  runId: string;
  path?: string;
  hunkId?: string;
}

export class ReviewActions {
  constructor(
    private readonly client: () => LocusClient | undefined,
    readonly reviews: Reviews,
    private readonly changed: (runId: string) => void,
  ) {}

  private connected(): LocusClient {
    const client = this.client();
    if (!client) throw new Error("Locus: not connected to the daemon");
    return client;
  }

  async reload(runId: string): Promise<ReviewView> {
    const view = await this.connected().review(runId);
    this.reviews.set(runId, view);
    this.changed(runId);
    return view;
  }

  private async current(runId: string): Promise<ReviewView> {
    return this.reviews.get(runId) ?? (await this.reload(runId));
  }

  /** Send decisions at the revision shown; a stale one re-fetches and says so. */
  async decide(runId: string, decisions: Record<string, DecisionIn>): Promise<boolean> {
    if (Object.keys(decisions).length === 0) return false;
    const seen = await this.current(runId);
    const { stale, view } = await this.connected().decide(runId, seen.revision, decisions);
    this.reviews.set(runId, view);
    this.changed(runId);
    if (stale) {
      void vscode.window.showWarningMessage(
        "Locus: the run's changes moved on since you read them; the review was fetched again, nothing was decided. Look again and decide.",
      );
    }
    return !stale;
  }

  accept(target: HunkTarget): Promise<boolean> {
    return this.decide(target.runId, { [key(target)]: { action: "accept" } });
  }

  async reject(target: HunkTarget): Promise<boolean> {
    const comment = await vscode.window.showInputBox({
      title: "Reject: why? (goes back to the agent)",
      prompt: "Leave empty to reject without a comment; Escape decides nothing",
    });
    if (comment === undefined) return false;
    return this.decide(target.runId, { [key(target)]: { action: "reject", comment: comment || null } });
  }

  /** Edit-then-accept: the hunk's new side in an editor; "Accept edited" sends what is there. */
  async edit(target: HunkTarget): Promise<boolean> {
    const view = await this.current(target.runId);
    const hunk = view.files.find((f) => f.path === target.path)?.hunks.find((h) => h.id === target.hunkId);
    if (!hunk) return false;
    const document = await vscode.workspace.openTextDocument({ content: editText(hunk) });
    await vscode.window.showTextDocument(document);
    const done = await vscode.window.showInformationMessage("Locus: edit the hunk, then accept it", "Accept edited");
    if (done !== "Accept edited") return false;
    const lines = editedLines(document.getText());
    return this.decide(target.runId, { [key(target)]: { action: "edit", lines } });
  }

  /** Accept or reject every undecided hunk (and structural file) of the run. */
  async all(runId: string, action: "accept" | "reject"): Promise<boolean> {
    let comment: string | null = null;
    if (action === "reject") {
      const said = await vscode.window.showInputBox({ title: "Reject all: why? (goes back to the agent)" });
      if (said === undefined) return false;
      comment = said || null;
    }
    const view = await this.current(runId);
    const decisions: Record<string, DecisionIn> = {};
    for (const file of view.files) {
      if (file.structural && !file.decision) decisions[file.path] = { action, comment };
      for (const hunk of file.hunks) if (!hunk.decision) decisions[hunk.id] = { action, comment };
    }
    return this.decide(runId, decisions);
  }

  async commit(runId: string): Promise<string | undefined> {
    const view = await this.reload(runId);
    const message = await vscode.window.showInputBox({
      title: "Commit the accepted changes",
      value: view.commitMessage ?? "",
      prompt: "The commit message (the task's trailer is added)",
    });
    if (message === undefined) return undefined;
    const result = await this.connected().commit({ runId, revision: view.revision, message: message || null });
    this.changed(runId);
    return result.commit;
  }

  /** The rejected hunks and their comments go back to the agent: a new run (a new round). */
  async sendBack(runId: string): Promise<Run> {
    const seen = await this.current(runId);
    const next = await this.connected().sendBack(runId, seen.revision);
    this.changed(runId);
    return next;
  }
}

function key(target: HunkTarget): string {
  return target.hunkId ?? target.path ?? "";
}

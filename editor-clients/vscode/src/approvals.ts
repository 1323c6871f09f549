/**
 * `locus/approval` as a prompt that stays until answered: Allow once / Allow always / Reject.
 *
 * A QuickPick, not a modal dialog: an extension cannot close a modal, and the prompt must close
 * when another client (a terminal, another editor) answered first or the run was cancelled.
 * `ignoreFocusOut` keeps it up while the person looks at the code. Escape (or clicking away)
 * sends nothing: the daemon keeps waiting for another client or the run's cancel.
 *
 * The command, the reason and the run's title come from the agent and the policy: QuickPick
 * rows render `$(name)` as icons, so those are escaped (`iconsAsText`); nothing else is markup
 * there. The title bar holds only our own words.
 */
import * as vscode from "vscode";
import type { ApprovalDecision, PendingApproval } from "./client";
import { oneLine } from "./reviewModel";

interface Choice extends vscode.QuickPickItem {
  decision: ApprovalDecision;
}

/** `$(zap)` shown as those characters, not as an icon (VS Code's own escape: a backslash). */
export function iconsAsText(text: string): string {
  return text.replace(/(\\)?\$\(([A-Za-z0-9-]+(?:~[A-Za-z0-9-]*)?)\)/g, (whole, escaped: string | undefined) =>
    escaped ? whole : `\\${whole}`,
  );
}

export function approvalChoices(command: string, reason: string, runTitle: string): Choice[] {
  const shown = (text: string) => iconsAsText(oneLine(text));
  return [
    { label: "Allow once", decision: "allow_once", description: shown(command), detail: `why: ${shown(reason)}` },
    { label: "Allow always", decision: "allow_always", description: "this command, for the rest of this run" },
    { label: "Reject", decision: "reject", description: "the agent is told no", detail: `run: ${shown(runTitle)}` },
  ];
}

/** The prompt on screen now: VS Code shows one QuickPick at a time (a second would hide it). */
let turn: Promise<unknown> = Promise.resolve();

/** Asks when the prompts before it are done; one settled meanwhile is never shown. */
export function askApproval(approval: PendingApproval, runTitle: string): Promise<ApprovalDecision | undefined> {
  let done = false;
  void approval.settled.then(() => (done = true));
  const asked = turn.then(() => (done ? undefined : prompt(approval, runTitle)));
  turn = asked;
  return asked;
}

function prompt({ request, settled }: PendingApproval, runTitle: string): Promise<ApprovalDecision | undefined> {
  const pick = vscode.window.createQuickPick<Choice>();
  pick.title = "Locus: the agent wants to run a command";
  pick.placeholder = "Allow once, allow always, or reject (Escape: decide later, or in another client)";
  pick.items = approvalChoices(request.command, request.reason, runTitle);
  pick.ignoreFocusOut = true;
  pick.matchOnDescription = false;
  return new Promise((resolve) => {
    let decided: ApprovalDecision | undefined;
    pick.onDidAccept(() => {
      decided = pick.selectedItems[0]?.decision;
      if (decided) pick.hide();
    });
    pick.onDidHide(() => {
      pick.dispose();
      resolve(decided);
    });
    // Answered in another client, or withdrawn (the run was cancelled): close the prompt.
    void settled.then(() => pick.hide());
    pick.show();
  });
}

/**
 * `locus/approval` as a modal: Allow once / Allow always / Reject. Closing it sends nothing (the
 * daemon waits for another client or the run's cancel). The command and reason come from the
 * agent: shown as the modal's plain-text detail, never as markdown.
 */
import * as vscode from "vscode";
import type { ApprovalDecision, PendingApproval } from "./client";

const CHOICES: Record<string, ApprovalDecision> = {
  "Allow once": "allow_once",
  "Allow always": "allow_always",
  Reject: "reject",
};

export async function askApproval({ request }: PendingApproval, title: string): Promise<ApprovalDecision | undefined> {
  const picked = await vscode.window.showWarningMessage(
    `Locus: the agent of "${title}" wants to run a command`,
    { modal: true, detail: `${request.command}\n\nwhy: ${request.reason}` },
    ...Object.keys(CHOICES),
  );
  return picked === undefined ? undefined : CHOICES[picked];
}

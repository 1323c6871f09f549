// An ACP client built from the TypeScript SDK (@agentclientprotocol/sdk, imported by path:
// ACP_SDK) driving `locusd acp` (LOCUSD) on the checkout LOCUS_REPO: list → prompt (the
// command's approval answered allow_once) → review → decide (stats.py's hunks accepted, every
// other file rejected; a made-up revision refused) → commit. Writes what it saw as JSON to
// LOCUS_OUT; touches LOCUS_GATE once it watches the run (the model waits for that).
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Readable, Writable } from "node:stream";

const acp = await import(process.env.ACP_SDK);
const repo = process.env.LOCUS_REPO;
const seen = { updates: [], asked: [] };

class Recorder {
  async requestPermission(params) {
    seen.asked.push({ title: params.toolCall.title, options: params.options });
    return { outcome: { outcome: "selected", optionId: "allow_once" } };
  }
  async sessionUpdate(params) {
    const update = params.update;
    seen.updates.push(update);
    if (update.sessionUpdate === "agent_thought_chunk" && update.content.text === "[running]\n") {
      writeFileSync(process.env.LOCUS_GATE, "watching");
    }
  }
  async writeTextFile() {
    throw acp.RequestError.methodNotFound("fs/write_text_file");
  }
  async readTextFile() {
    throw acp.RequestError.methodNotFound("fs/read_text_file");
  }
}

const agent = spawn(process.env.LOCUSD, ["acp"], { cwd: repo, stdio: ["pipe", "pipe", "inherit"] });
const stream = acp.ndJsonStream(Writable.toWeb(agent.stdin), Readable.toWeb(agent.stdout));
const connection = new acp.ClientSideConnection(() => new Recorder(), stream);

async function refused(work) {
  try {
    await work;
    return null;
  } catch (error) {
    return { code: error.code, message: error.message, data: error.data };
  }
}

try {
  seen.init = await connection.initialize({ protocolVersion: acp.PROTOCOL_VERSION, clientCapabilities: {} });
  seen.listedBefore = await connection.listSessions({ cwd: repo });
  const { sessionId } = await connection.newSession({ cwd: repo, mcpServers: [] });
  seen.turn = await connection.prompt({ sessionId, prompt: [{ type: "text", text: "Fix the median" }] });
  const runId = seen.turn._meta.locus.runId;
  seen.listedAfter = await connection.listSessions({ cwd: repo });
  const view = await connection.extMethod("_locus/review/get", { runId });
  const decisions = {};
  for (const file of view.files) {
    if (file.path === "stats.py") {
      for (const hunk of file.hunks) decisions[hunk.id] = { action: "accept" };
    } else {
      decisions[file.path] = { action: "reject", comment: "not this" };
    }
  }
  seen.stale = await refused(
    connection.extMethod("_locus/review/decide", { runId, revision: "0000000000000000", decisions }),
  );
  const decided = await connection.extMethod("_locus/review/decide", { runId, revision: view.revision, decisions });
  seen.undecided = decided.undecided;
  seen.commit = await connection.extMethod("_locus/review/commit", { runId, revision: decided.revision });
} catch (error) {
  seen.error = { code: error.code, message: error.message ?? String(error), data: error.data };
} finally {
  writeFileSync(process.env.LOCUS_OUT, JSON.stringify(seen));
  agent.stdin.end();
  await new Promise((done) => agent.on("exit", done));
}

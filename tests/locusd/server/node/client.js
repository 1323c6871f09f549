// A vscode-jsonrpc client on the daemon's Unix socket: the transport the VS Code extension
// uses, unchanged. Prints one JSON line with what it saw; run by test_node_client.py.
"use strict";
const net = require("net");
const rpc = require("vscode-jsonrpc/node");

const socket = net.createConnection(process.argv[2]);
socket.on("error", (error) => {
  console.error(String(error));
  process.exit(2);
});
socket.on("connect", async () => {
  const connection = rpc.createMessageConnection(
    new rpc.SocketMessageReader(socket),
    new rpc.SocketMessageWriter(socket),
  );
  let gotEvent;
  const event = new Promise((resolve) => (gotEvent = resolve));
  connection.onNotification("locus/runs/event", (params) => gotEvent(params));
  connection.onRequest("locus/approval", (params) => ({ decision: "reject", asked: params.command }));
  connection.listen();

  const init = await connection.sendRequest("initialize", {
    processId: process.pid,
    capabilities: {},
    initializationOptions: { locus: { protocolVersion: "1.0", client: { name: "vscode-jsonrpc" } } },
  });
  connection.sendNotification("initialized", {});
  const status = await connection.sendRequest("locus/daemon/status", {});
  let error = null;
  try {
    await connection.sendRequest("locus/runs/show", { runId: "nope" });
  } catch (e) {
    error = { code: e.code, message: e.message, data: e.data };
  }
  const runs = await connection.sendRequest("locus/runs/list", {});
  await connection.sendRequest("locus/runs/subscribe", { runId: "r1" });
  const pushed = await event;
  const started = await connection.sendRequest("locus/runs/start", { repo: "/tmp/repo", task: "make" });
  await connection.sendRequest("shutdown");
  socket.on("close", () => {
    console.log(
      JSON.stringify({
        experimental: init.capabilities.experimental,
        clients: status.clients,
        error,
        title: runs.runs[0].title,
        event: pushed,
        outcome: started.outcome,
      }),
    );
    process.exit(0);
  });
  connection.sendNotification("exit");
});

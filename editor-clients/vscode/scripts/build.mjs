// Bundles the extension (vscode external; vscode-jsonrpc inlined, so the .vsix needs no
// node_modules) and, for the tests, the client and the UI modules with `vscode` aliased to the
// small API mock in test/vscode-mock.ts.
import { build } from "esbuild";
import { readdirSync } from "node:fs";

const common = { bundle: true, platform: "node", target: "node20", format: "cjs", sourcemap: false, logLevel: "warning" };
await build({ ...common, entryPoints: ["src/extension.ts"], outfile: "dist/extension.js", external: ["vscode"] });
const tests = readdirSync("test").filter((name) => /\.(test|e2e)\.ts$/.test(name));
await build({
  ...common,
  entryPoints: tests.map((name) => `test/${name}`),
  outdir: "dist-test",
  alias: { vscode: "./test/vscode-mock.ts" },
});

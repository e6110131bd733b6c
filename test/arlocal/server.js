// Starts arlocal (a local Arweave gateway) for the arweave crate's integration test, bound to
// 127.0.0.1 only (its own CLI listens on all interfaces) on a free port chosen by the OS.
//
// Usage: node server.js DB_DIR
// Prints one line, {"port": N, "pid": P}, once it listens. Stops on SIGTERM/SIGINT or when its
// stdin closes, so a test that dies without cleaning up does not leave it running.
const http = require("http");
const ArLocal = require("arlocal").default;

async function main() {
  const dbPath = process.argv[2];
  if (!dbPath) throw new Error("usage: node server.js DB_DIR");
  // The port argument is unused: listen() below picks a free one.
  const arlocal = new ArLocal(1984, false, dbPath, false);
  let server;
  arlocal.app.listen = function (_port, _onListening) {
    server = http.createServer(this.callback());
    server.listen(0, "127.0.0.1");
    return server;
  };
  // arlocal logs its (wrong) port to stdout; our stdout carries only the JSON line.
  const log = console.log;
  console.log = (...args) => console.error(...args);
  await arlocal.start();
  if (!server.listening) await new Promise((resolve) => server.once("listening", resolve));
  log(JSON.stringify({ port: server.address().port, pid: process.pid }));

  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});

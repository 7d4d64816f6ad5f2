// The Node floor for bench/run: a bare node:http server, no framework.
//   node server.mjs <port>     (listens on 127.0.0.1)
// Answers every POST like the workerd peer: {"message":"Hello from Node!",
// "input":{"body":<request body, parsed and re-serialised>}}.
import http from "node:http";

const port = Number(process.argv[2] || 8788);
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let out;
    try {
      out = JSON.stringify({ message: "Hello from Node!",
                             input: { body: JSON.stringify(JSON.parse(Buffer.concat(chunks).toString("utf8"))) } });
    } catch (e) {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end(`not JSON: ${e.message}\n`);
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
    res.end(out);
  });
});
server.keepAliveTimeout = 60000;
server.listen(port, "127.0.0.1");

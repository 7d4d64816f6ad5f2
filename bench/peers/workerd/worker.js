// workerd peer for bench/run: the hello handler as a Cloudflare Worker (ES
// module). Answers POST /bench like nimbus's hello-node function does through
// the HTTP gateway: {"message":"Hello from Node!","input":{"body":<request body>}}
// with the body parsed and re-serialised, as the handler's JSON work.
export default {
  async fetch(request) {
    const body = await request.text();
    const out = { message: "Hello from Node!", input: { body: JSON.stringify(JSON.parse(body)) } };
    return new Response(JSON.stringify(out), { headers: { "content-type": "application/json" } });
  },
};

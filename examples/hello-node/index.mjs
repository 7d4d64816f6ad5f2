// The Node.js hello function: an unmodified Lambda handler (ESM).
//   nimbus deploy examples/hello-node --name hello-node --runtime nodejs20.x --handler index.handler
export const handler = async (event, context) => ({ message: "Hello from Node!", input: event });

/**
 * nimbus runtime client for Node.js: runs unmodified AWS Lambda handlers.
 *
 * Started by the platform inside an instance as
 *
 *     /usr/bin/node /var/runtime/node/index.mjs [handler]
 *
 * with cwd = LAMBDA_TASK_ROOT (/var/task). It speaks the Lambda Runtime API
 * (plain HTTP/1.1 to AWS_LAMBDA_RUNTIME_API) on one keep-alive socket, a
 * posted result pipelined with the next /next, and mirrors the behaviour of AWS's
 * own client (npm aws-lambda-ric, nodejs20.x): handler resolution and its
 * Runtime.* init errors, async / promise / callback handlers with
 * callbackWaitsForEmptyEventLoop (implemented with process 'beforeExit', as
 * AWS does), context.succeed/fail/done, error bodies {errorType, errorMessage,
 * trace}, exit codes 129/128 for uncaught exceptions / unhandled rejections,
 * Lambda's console format, and response streaming (awslambda.streamifyResponse).
 * No npm packages. See runtimes/README.md.
 */

import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const API_PREFIX = '/2018-06-01/runtime';
const USER_AGENT = `nimbus-node/${process.versions.node}`;

// ---------------------------------------------------------------------------
// Errors

function defineRuntimeError(name) {
  const cls = class extends Error {};
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}
const ImportModuleError = defineRuntimeError('ImportModuleError');
const HandlerNotFound = defineRuntimeError('HandlerNotFound');
const MalformedHandlerName = defineRuntimeError('MalformedHandlerName');
const UserCodeSyntaxError = defineRuntimeError('UserCodeSyntaxError');
const MalformedStreamingHandler = defineRuntimeError('MalformedStreamingHandler');
const InvalidStreamingOperation = defineRuntimeError('InvalidStreamingOperation');
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
NodeJsExit.prototype.name = 'Runtime.NodeJsExit';

function isErrorLike(obj) {
  return (
    obj && typeof obj.name === 'string' && obj.name && typeof obj.message === 'string' &&
    obj.message && typeof obj.stack === 'string' && obj.stack
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

/** The JSON body posted to /error and /init/error. */
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return { errorType: error.name, errorMessage: error.message, trace: error.stack.split('\n') };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_err) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(value) {
  if (value instanceof Error) {
    const ret = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
    if (typeof value.stack === 'string') ret.stack = value.stack.split('\n');
    return ret;
  }
  return value;
}

/** An error as Lambda's text log shows it: a tab, then JSON. */
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_err) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// ---------------------------------------------------------------------------
// Logging: console.* patched to Lambda's format, written synchronously to fd 1
// so that a line is in the pipe before the response is posted.

const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID_SYMBOL = Symbol.for('aws.lambda.runtime.tenantId');
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function writeAllSync(fd, text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN') {
        Atomics.wait(sleepCell, 0, 0, 1); // fd made non-blocking by libuv; pipe full
        continue;
      }
      if (e.code === 'EPIPE') return;
      throw e;
    }
  }
}

const jsonErrorReplacer = (_, value) => {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
};

function formatJsonMessage(requestId, timestamp, level, ...params) {
  const result = { timestamp, level: level.name, requestId };
  const tenantId = globalThis[TENANT_ID_SYMBOL];
  if (tenantId !== undefined && tenantId !== null) result.tenantId = tenantId;
  if (params.length === 1) {
    result.message = params[0];
    try {
      return JSON.stringify(result, jsonErrorReplacer);
    } catch (_) {
      result.message = util.format(result.message);
      return JSON.stringify(result);
    }
  }
  result.message = util.format(...params);
  for (const param of params) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? 'UnknownError';
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(result);
}

const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
});
let JSON_LOGS = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';

function logText(level, message, ...params) {
  const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID_SYMBOL]}\t${level.name}\t${util.format(message, ...params)}`;
  writeAllSync(1, line.replace(/\n/g, '\r') + '\n');
}

function logJson(level, message, ...params) {
  const line = formatJsonMessage(globalThis[REQUEST_ID_SYMBOL], new Date().toISOString(), level, message, ...params);
  writeAllSync(1, line.replace(/\n/g, '\r') + '\n');
}

const structuredConsole = {};

function patchConsole() {
  const log = JSON_LOGS ? logJson : logText;
  const minimum = LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const nop = () => {};
  const make = (level) => (level.priority >= minimum.priority ? (msg, ...params) => log(level, msg, ...params) : nop);
  console.trace = make(LEVELS.TRACE);
  console.debug = make(LEVELS.DEBUG);
  console.info = make(LEVELS.INFO);
  console.log = console.info;
  console.warn = make(LEVELS.WARN);
  console.error = make(LEVELS.ERROR);
  console.fatal = (msg, ...params) => log(LEVELS.FATAL, msg, ...params);
  structuredConsole.logError = JSON_LOGS
    ? (_msg, err) => console.error(intoError(err))
    : (msg, err) => console.error(msg, toFormatted(intoError(err)));
}

function fatal(message, code = 1) {
  writeAllSync(2, `nimbus node runtime: ${message}\n`);
  process.exit(code);
}

// ---------------------------------------------------------------------------
// Runtime API client

function splitAddress(address) {
  let host, port;
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    host = address.slice(1, end);
    port = address.slice(end + 2);
  } else {
    const colon = address.lastIndexOf(':');
    host = address.slice(0, colon);
    port = address.slice(colon + 1);
  }
  if (!host || !/^\d+$/.test(port)) throw new Error(`invalid AWS_LAMBDA_RUNTIME_API '${address}' (want host:port)`);
  return [host, parseInt(port, 10)];
}

/** The connection went away before a response began: a request on a reused keep-alive socket is sent again. */
class StaleConnection extends Error {}

/**
 * One keep-alive HTTP/1.1 connection to the Runtime API, spoken directly on a
 * socket: requests go out in the order given, their responses are matched to
 * them in order. That allows pipelining (a posted result and the next /next in
 * one write), which Node's http agent does not; and it is much less code per
 * request for V8 to run and compile in every instance. Bodies are read by
 * Content-Length, chunked, or up to the close.
 */
class RuntimeConnection {
  constructor(hostname, port, hostHeader) {
    this.hostname = hostname;
    this.port = port;
    this.hostHeader = hostHeader;
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.pending = []; // {method, resolve, reject}, oldest first
  }

  /** Writes the requests ({method, path, headers, body}) at once; one promise per request, resolved with {status, headers, body}. */
  send(requests) {
    if (this.socket === null) this.connect();
    this.socket.ref(); // an answer is awaited: the process waits for it
    const parts = [];
    const answers = requests.map(({ method, path: urlPath, headers = {}, body }) => {
      let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nUser-Agent: ${USER_AGENT}\r\n`;
      for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
      const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
      if (payload !== undefined) head += `Content-Length: ${payload.length}\r\n`;
      parts.push(Buffer.from(`${head}\r\n`, 'utf8'));
      if (payload !== undefined) parts.push(payload);
      return new Promise((resolve, reject) => this.pending.push({ method, resolve, reject }));
    });
    this.socket.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    return answers;
  }

  connect() {
    const socket = net.connect({ host: this.hostname, port: this.port });
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.received(socket, chunk));
    socket.on('error', (err) => this.drop(socket, err));
    socket.on('close', () => this.drop(socket, null));
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
  }

  /** Ends the socket; what is still waiting fails (StaleConnection when nothing of its response arrived). */
  drop(socket, err) {
    if (socket !== this.socket) return;
    this.socket = null;
    const pending = this.pending;
    this.pending = [];
    const partial = this.buffer.length > 0;
    socket.destroy();
    pending.forEach((p, i) => {
      if (i === 0 && partial && !err && p.closeDelimited) {
        p.resolve(p.closeDelimited(this.buffer));
      } else if (i === 0 && partial) {
        p.reject(new Error(`the Runtime API closed the connection mid-response${err ? `: ${err.message}` : ''}`));
      } else {
        p.reject(Object.assign(new StaleConnection(err ? err.message : 'connection closed'), { code: err?.code }));
      }
    });
    this.buffer = Buffer.alloc(0);
  }

  received(socket, chunk) {
    if (socket !== this.socket) return;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.pending.length > 0 && this.socket === socket) {
      let response;
      try {
        response = this.parse(this.pending[0]);
      } catch (err) {
        this.drop(socket, err);
        return;
      }
      if (response === null) return; // needs more bytes
      this.pending.shift().resolve(response);
      // An idle connection does not keep the process alive: 'beforeExit'
      // (callbackWaitsForEmptyEventLoop) must still see an empty event loop.
      if (this.pending.length === 0) socket.unref();
      if ((response.headers.connection || '').toLowerCase() === 'close') this.drop(socket, null);
    }
  }

  /** The first complete response in the buffer (consumed), or null; 1xx interim responses are skipped. */
  parse(waiting) {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return null;
      // Latin-1, as Node's http reads header bytes (parseJsonHeader decodes UTF-8 from there).
      const lines = this.buffer.toString('latin1', 0, end).split('\r\n');
      const status = /^HTTP\/\d\.\d (\d{3})/.exec(lines[0]);
      if (!status) throw new Error(`malformed status line from the Runtime API: ${JSON.stringify(lines[0])}`);
      const headers = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
      }
      const code = Number(status[1]);
      let rest = end + 4;
      if (code >= 100 && code < 200) {
        this.buffer = this.buffer.subarray(rest);
        continue;
      }
      let body;
      if (waiting.method === 'HEAD' || code === 204 || code === 304) {
        body = Buffer.alloc(0);
      } else if ((headers['transfer-encoding'] || '').toLowerCase().includes('chunked')) {
        const chunks = [];
        for (;;) {
          const lineEnd = this.buffer.indexOf('\r\n', rest);
          if (lineEnd < 0) return null;
          const size = parseInt(this.buffer.toString('latin1', rest, lineEnd).split(';')[0].trim() || '0', 16);
          if (Number.isNaN(size)) throw new Error('malformed chunk size from the Runtime API');
          if (size === 0) {
            // Trailers, up to an empty line.
            let at = lineEnd + 2;
            for (;;) {
              const trailerEnd = this.buffer.indexOf('\r\n', at);
              if (trailerEnd < 0) return null;
              if (trailerEnd === at) {
                rest = trailerEnd + 2;
                break;
              }
              at = trailerEnd + 2;
            }
            break;
          }
          if (this.buffer.length < lineEnd + 2 + size + 2) return null;
          chunks.push(this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
          rest = lineEnd + 2 + size + 2;
        }
        body = Buffer.concat(chunks);
      } else if (headers['content-length'] !== undefined) {
        const length = Number(headers['content-length']);
        if (!Number.isSafeInteger(length) || length < 0) throw new Error('malformed Content-Length from the Runtime API');
        if (this.buffer.length < rest + length) return null;
        body = Buffer.from(this.buffer.subarray(rest, rest + length));
        rest += length;
      } else {
        // The body ends when the server closes the connection.
        const bodyStart = rest;
        waiting.closeDelimited = (buffer) => ({ status: code, headers, body: Buffer.from(buffer.subarray(bodyStart)) });
        return null;
      }
      this.buffer = this.buffer.subarray(rest);
      return { status: code, headers, body };
    }
  }

  close() {
    if (this.socket !== null) this.drop(this.socket, null);
  }
}

class RuntimeClient {
  constructor(address) {
    [this.hostname, this.port] = splitAddress(address);
    this.connection = new RuntimeConnection(this.hostname, this.port, address);
    this.nextAnswer = null; // a /next sent behind the last posted result, not read yet
    // For streamed responses only (a writable request body).
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  /** Resolves {status, headers, body: Buffer}; sent again once if the connection closed before any answer (a stale keep-alive socket). */
  async request(method, urlPath, body, headers = {}, thenGet = undefined) {
    for (let attempt = 0; ; attempt++) {
      const requests = [{ method, path: urlPath, headers, body }];
      if (thenGet !== undefined) requests.push({ method: 'GET', path: thenGet });
      const [answer, next] = this.connection.send(requests);
      if (next !== undefined) {
        next.catch(() => {}); // read (or found gone) by takeNext()
        this.nextAnswer = next;
      }
      try {
        return await answer;
      } catch (err) {
        this.nextAnswer = null;
        if (!(err instanceof StaleConnection) || attempt > 0) throw err;
      }
    }
  }

  /** The answer to the /next pipelined behind the last post; null if there is none or its connection went away. */
  async takeNext() {
    const next = this.nextAnswer;
    this.nextAnswer = null;
    if (next === null) return null;
    try {
      return await next;
    } catch (err) {
      if (err instanceof StaleConnection) return null;
      throw err;
    }
  }

  async nextInvocation() {
    const res = (await this.takeNext()) ?? (await this.request('GET', `${API_PREFIX}/invocation/next`));
    if (res.status !== 200) {
      throw new Error(`Failed to get next invocation: status ${res.status}: ${res.body.toString('utf8')}`);
    }
    return { bodyJson: res.body.toString('utf8'), headers: res.headers };
  }

  /** Serialises synchronously (throws if it cannot), posts with the next /next behind it, then calls callback. Non-2xx is ignored, as AWS's client does. */
  postInvocationResponse(response, id, callback) {
    const body = trySerializeResponse(response);
    this.request('POST', `${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`, body, {
      'Content-Type': 'application/json',
    }, `${API_PREFIX}/invocation/next`).then(() => callback(), (err) => fatal(`posting the response failed: ${err.message}`));
  }

  postInvocationError(error, id, callback, exitCode = 1) {
    const body = trySerializeResponse(toRapidResponse(error));
    // An error that ends the process asks for no next event.
    const thenGet = exitCode === 1 ? `${API_PREFIX}/invocation/next` : undefined;
    this.request('POST', `${API_PREFIX}/invocation/${encodeURIComponent(id)}/error`, body, {
      'Content-Type': 'application/json',
    }, thenGet).then(() => callback(), (err) => fatal(`posting the error failed: ${err.message}`, exitCode));
  }

  postInitError(error, callback, exitCode = 1) {
    const response = toRapidResponse(error);
    this.request('POST', `${API_PREFIX}/init/error`, trySerializeResponse(response), {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Function-Error-Type': headerValue(response.errorType),
    }).then(() => callback(), (err) => fatal(`posting the init error failed: ${err.message}`, exitCode));
  }

  close() {
    this.connection.close();
    this.agent.destroy();
  }

  /** A writable request for a streamed response (Lambda-Runtime-Function-Response-Mode: streaming). */
  streamResponse(id) {
    let resolveDone, rejectDone;
    const responseDone = new Promise((res, rej) => ((resolveDone = res), (rejectDone = rej)));
    responseDone.catch(() => {});
    const req = http.request(
      {
        hostname: this.hostname,
        port: this.port,
        method: 'POST',
        path: `${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`,
        agent: this.agent,
        headers: {
          'User-Agent': USER_AGENT,
          'Lambda-Runtime-Function-Response-Mode': 'streaming',
          'Transfer-Encoding': 'chunked',
          Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
          'Content-Type': 'application/octet-stream',
        },
      },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolveDone(res.statusCode));
        res.on('error', rejectDone);
      },
    );
    req.on('error', (err) => {
      rejectDone(err);
      req.destroy(err);
    });
    return { req, responseDone };
  }
}

function headerValue(text) {
  return String(text).replace(/[^\x20-\x7e]/g, '') || 'Runtime.Unknown';
}

function trySerializeResponse(body) {
  try {
    return JSON.stringify(body === undefined ? null : body);
  } catch (_err) {
    throw new Error('Unable to stringify response body');
  }
}

// ---------------------------------------------------------------------------
// Response streaming (awslambda.streamifyResponse / HttpResponseStream)

const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
    const metadataPrelude = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadataPrelude);
      write(new Uint8Array(8)); // 8 NUL bytes end the prelude
    };
    return underlyingStream;
  }
}

function installAwsLambdaGlobal() {
  const v = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (v === '1' || v === 'true') return;
  globalThis.awslambda = {
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
      return handler;
    },
    HttpResponseStream,
  };
}

function makeResponseStream(client, id) {
  const { req, responseDone } = client.streamResponse(id);
  let written = false;
  const origWrite = req.write.bind(req);
  const origEnd = req.end.bind(req);
  const beforeFirstWrite = () => {
    if (!written) {
      written = true;
      if (typeof req._onBeforeFirstWrite === 'function') req._onBeforeFirstWrite((ch) => origWrite(ch));
    }
  };
  req.setContentType = (contentType) => {
    if (written) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    req.setHeader('Content-Type', contentType);
  };
  req.write = (chunk, encoding, callback) => {
    if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk) && chunk?.constructor !== Uint8Array) {
      chunk = JSON.stringify(chunk);
    }
    beforeFirstWrite();
    return origWrite(chunk, encoding, callback);
  };
  req.end = (chunk, encoding, callback) => {
    if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    if (chunk !== undefined && chunk !== null) req.write(chunk, encoding);
    else beforeFirstWrite();
    return origEnd(callback);
  };
  const fail = (err, callback) => {
    const error = toRapidResponse(err);
    req.addTrailers({
      'Lambda-Runtime-Function-Error-Type': headerValue(error.errorType),
      'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(error)).toString('base64'),
    });
    beforeFirstWrite();
    origEnd(callback);
  };
  return { responseStream: req, responseDone, fail };
}

// ---------------------------------------------------------------------------
// Handler loading (same resolution order as aws-lambda-ric)

function hasFolderPackageJsonTypeModule(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const pj = path.join(folder, '/package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj));
      if (pkg) return pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  if (folder === '/') return false;
  return hasFolderPackageJsonTypeModule(path.resolve(folder, '..'));
}

function tryRequireFile(file, extension = '') {
  const p = file + extension;
  return fs.existsSync(p) ? require(p) : undefined;
}

async function tryAwaitImport(file, extension = '') {
  const p = file + extension;
  return fs.existsSync(p) ? await import(pathToFileURL(p).href) : undefined;
}

async function tryRequire(appRoot, moduleRoot, module) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, module);
  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) return extensionless;
  const pjHasModule = hasFolderPackageJsonTypeModule(path.resolve(path.dirname(lambdaStylePath)));
  if (!pjHasModule) {
    const loaded = tryRequireFile(lambdaStylePath, '.js');
    if (loaded) return loaded;
  }
  const loaded =
    (pjHasModule && (await tryAwaitImport(lambdaStylePath, '.js'))) ||
    (await tryAwaitImport(lambdaStylePath, '.mjs')) ||
    tryRequireFile(lambdaStylePath, '.cjs');
  if (loaded) return loaded;
  // Node-style resolution relative to the app root (e.g. a package in node_modules).
  return require(require.resolve(module, { paths: [appRoot, moduleRoot] }));
}

async function loadUserApp(appRoot, moduleRoot, module) {
  installAwsLambdaGlobal();
  try {
    return await tryRequire(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) throw new ImportModuleError(e);
    throw e;
  }
}

async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, module, handlerPath] = match;
  const userApp = await loadUserApp(appRoot, moduleRoot, module);
  const handlerFunc = handlerPath.split('.').reduce((nested, key) => nested && nested[key], userApp);
  if (!handlerFunc) throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  if (typeof handlerFunc !== 'function') throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  return handlerFunc;
}

function handlerMetadata(handlerFunc) {
  const streaming = handlerFunc[HANDLER_STREAMING];
  if (streaming !== undefined && streaming !== null && streaming !== false && streaming !== STREAM_RESPONSE) {
    throw new MalformedStreamingHandler('Only response streaming is supported.');
  }
  let isAsync = false;
  try {
    isAsync = handlerFunc.constructor?.name === 'AsyncFunction';
  } catch (_) {}
  return { streaming: streaming === STREAM_RESPONSE, isAsync };
}

// ---------------------------------------------------------------------------
// Invocation loop

let beforeExitListener = () => {};
const resetBeforeExit = () => (beforeExitListener = () => {});
const setBeforeExit = (fn) => (beforeExitListener = fn);

function isPromise(obj) {
  return obj && obj.then && typeof obj.then === 'function';
}

const INVOKE_HEADER = {
  ClientContext: 'lambda-runtime-client-context',
  CognitoIdentity: 'lambda-runtime-cognito-identity',
  ARN: 'lambda-runtime-invoked-function-arn',
  AWSRequestId: 'lambda-runtime-aws-request-id',
  DeadlineMs: 'lambda-runtime-deadline-ms',
  XRayTrace: 'lambda-runtime-trace-id',
  TenantId: 'lambda-runtime-aws-tenant-id',
};

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    // Node decodes header bytes as latin1; AWS's native client passes them on as UTF-8.
    return JSON.parse(Buffer.from(value, 'latin1').toString('utf8'));
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

/** Adds the invocation's data to the callback (or streaming) context, as AWS's InvokeContext does. */
function attachEnvironmentData(ctx, headers) {
  if (headers[INVOKE_HEADER.XRayTrace]) process.env._X_AMZN_TRACE_ID = headers[INVOKE_HEADER.XRayTrace];
  else delete process.env._X_AMZN_TRACE_ID;
  const env = process.env;
  const deadline = headers[INVOKE_HEADER.DeadlineMs];
  return Object.assign(ctx, {
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(headers[INVOKE_HEADER.ClientContext], 'ClientContext'),
    identity: parseJsonHeader(headers[INVOKE_HEADER.CognitoIdentity], 'CognitoIdentity'),
    invokedFunctionArn: headers[INVOKE_HEADER.ARN],
    awsRequestId: headers[INVOKE_HEADER.AWSRequestId],
    tenantId: headers[INVOKE_HEADER.TenantId],
    getRemainingTimeInMillis: () => deadline - Date.now(),
  });
}

/** callback + context.succeed/fail/done + callbackWaitsForEmptyEventLoop; the first call wins. */
function buildCallbackContext(client, id, scheduleNext) {
  const postError = (err, callback) => {
    structuredConsole.logError('Invoke Error', err);
    client.postInvocationError(err, id, callback);
  };
  let isCompleteInvoked = false;
  const complete = (result, callback) => {
    if (isCompleteInvoked) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    isCompleteInvoked = true;
    client.postInvocationResponse(result, id, callback);
  };
  let waitForEmptyEventLoop = true;

  const callback = (err, result) => {
    resetBeforeExit();
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      setBeforeExit(() => setImmediate(() => complete(result, scheduleNext)));
    }
  };
  const done = (err, result) => {
    resetBeforeExit();
    if (err !== undefined && err !== null) postError(err, scheduleNext);
    else complete(result, scheduleNext);
  };
  const succeed = (result) => done(null, result);
  const fail = (err) => (err === undefined || err === null ? done('handled') : done(err, null));

  let finished = false;
  const onlyFirst = (fn) =>
    function (...args) {
      if (!finished) {
        fn(...args); // may throw (unserialisable result) before `finished` is set, as in AWS's client
        finished = true;
      }
    };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: onlyFirst(succeed),
    fail: onlyFirst(fail),
    done: onlyFirst(done),
  };
  return [onlyFirst(callback), context, () => (isCompleteInvoked = true)];
}

class Runtime {
  constructor(client, handler, metadata, errorCallbacks) {
    this.client = client;
    this.handler = handler;
    this.metadata = metadata;
    this.errorCallbacks = errorCallbacks;
    this.handleOnce = metadata.streaming ? this.handleOnceStreaming : this.handleOnceBuffered;
  }

  scheduleIteration() {
    setImmediate(() => {
      this.handleOnce().then(
        () => {},
        (err) => {
          console.log(`Unexpected Top Level Error: ${err.toString()}`);
          this.errorCallbacks.uncaughtException(err);
        },
      );
    });
  }

  async nextInvocation() {
    const { bodyJson, headers } = await this.client.nextInvocation();
    const invokeId = headers[INVOKE_HEADER.AWSRequestId];
    if (!invokeId) throw new Error('invocation id is missing or invalid');
    globalThis[REQUEST_ID_SYMBOL] = invokeId;
    globalThis[TENANT_ID_SYMBOL] = headers[INVOKE_HEADER.TenantId];
    return { bodyJson, headers, invokeId };
  }

  async handleOnceBuffered() {
    const { bodyJson, headers, invokeId } = await this.nextInvocation();
    const [callback, callbackContext, markCompleted] = buildCallbackContext(
      this.client,
      invokeId,
      this.scheduleIteration.bind(this),
    );
    try {
      this.setErrorCallbacks(invokeId);
      this.setDefaultExitListener(invokeId, markCompleted);
      const result = this.handler(JSON.parse(bodyJson), attachEnvironmentData(callbackContext, headers), callback);
      if (isPromise(result)) {
        result.then(callbackContext.succeed, callbackContext.fail).catch(callbackContext.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  async handleOnceStreaming() {
    const { bodyJson, headers, invokeId } = await this.nextInvocation();
    let waitForEmptyEventLoop = true;
    const streamingContext = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
    };
    const { responseStream, responseDone, fail } = makeResponseStream(this.client, invokeId);
    const scheduleNext = () => {
      resetBeforeExit();
      if (!waitForEmptyEventLoop) this.scheduleIteration();
      else setBeforeExit(() => setImmediate(() => this.scheduleIteration()));
    };
    const ctxFail = (err) => {
      structuredConsole.logError('Invoke Error', err);
      fail(err);
      responseDone.then(scheduleNext, scheduleNext);
    };
    try {
      this.setErrorCallbacks(invokeId);
      setBeforeExit(() => this.scheduleIteration());
      const ctx = attachEnvironmentData(streamingContext, headers);
      const handlerResult = this.handler(JSON.parse(bodyJson), responseStream, ctx);
      if (!isPromise(handlerResult)) {
        ctxFail(new Error('Streaming does not support non-async handlers.'));
        return;
      }
      const result = await handlerResult;
      if (result !== undefined) console.warn('Streaming handlers ignore return values.');
      if (!responseStream.writableEnded) {
        ctxFail(new Error('Response stream is not finished.'));
        return;
      }
      await responseDone;
      scheduleNext();
    } catch (err) {
      ctxFail(err);
    }
  }

  setErrorCallbacks(invokeId) {
    this.errorCallbacks.uncaughtException = (error) =>
      this.client.postInvocationError(error, invokeId, () => process.exit(129), 129);
    this.errorCallbacks.unhandledRejection = (error) =>
      this.client.postInvocationError(error, invokeId, () => process.exit(128), 128);
  }

  /** If the event loop empties before the handler reports: async handlers fail, others succeed with null. */
  setDefaultExitListener(invokeId, markCompleted) {
    setBeforeExit(() => {
      resetBeforeExit();
      markCompleted();
      if (this.metadata.isAsync) {
        const error = new NodeJsExit();
        structuredConsole.logError('Invoke Error', error);
        this.client.postInvocationError(error, invokeId, () => this.scheduleIteration());
      } else {
        this.client.postInvocationResponse(null, invokeId, () => this.scheduleIteration());
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Entry point

/**
 * A primed runtime warms up before it waits: one invocation's worth of the
 * Runtime API client (a request for /next, a posted response) against a
 * server of its own on loopback, so that V8 has compiled those paths before
 * the first real event (measured: 8 ms off a cold start's Init Duration).
 */
async function warmUpClient() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(req.method === 'GET' ? 200 : 202, { 'Content-Type': 'application/json' });
      res.end('{}');
    });
  });
  try {
    await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    const client = new RuntimeClient(`127.0.0.1:${server.address().port}`);
    const next = await client.nextInvocation();
    JSON.parse(next.bodyJson);
    await new Promise((resolve) => client.postInvocationResponse({ warm: true }, 'warm-up', resolve));
    client.close();
  } catch {
    // Only a warm-up: the instance works without it.
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/**
 * A primed runtime: started in a sandbox of its own before its function was
 * known (RuntimeTemplate in src/sandbox/launcher.h). It says it is ready with
 * one byte on NIMBUS_PRIMED_FD, then reads the instance's environment until
 * EOF; by then the function's code is at /var/task.
 */
function receiveInstance() {
  const fd = Number(process.env.NIMBUS_PRIMED_FD);
  fs.writeSync(fd, 'r');
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    const n = fs.readSync(fd, buffer);
    if (n === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.closeSync(fd);
  if (chunks.length === 0) process.exit(0); // discarded before it got an instance
  const { env } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  for (const key of Object.keys(process.env)) delete process.env[key];
  for (const entry of env) {
    const eq = entry.indexOf('=');
    process.env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  JSON_LOGS = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
  process.chdir(process.env.LAMBDA_TASK_ROOT || '/var/task');
}

async function main() {
  if (process.env.NIMBUS_PRIMED_FD !== undefined) {
    await warmUpClient();
    receiveInstance();
  }
  patchConsole();
  const address = process.env.AWS_LAMBDA_RUNTIME_API;
  if (!address) fatal('AWS_LAMBDA_RUNTIME_API is not set');
  let client;
  try {
    client = new RuntimeClient(address);
  } catch (e) {
    fatal(e.message);
  }

  const errorCallbacks = {
    uncaughtException: (error) => client.postInitError(error, () => process.exit(129), 129),
    unhandledRejection: (error) => client.postInitError(error, () => process.exit(128), 128),
  };
  process.on('uncaughtException', (error) => {
    structuredConsole.logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    structuredConsole.logError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
  });
  process.on('beforeExit', () => beforeExitListener());

  const handlerString = process.argv[2] || process.env._HANDLER || '';
  const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  let handlerFunc, metadata;
  try {
    handlerFunc = await loadHandler(appRoot, handlerString);
    metadata = handlerMetadata(handlerFunc);
  } catch (error) {
    // As in AWS's client, an init failure goes through the uncaught-exception path.
    structuredConsole.logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
    return;
  }
  new Runtime(client, handlerFunc, metadata, errorCallbacks).scheduleIteration();
}

main();

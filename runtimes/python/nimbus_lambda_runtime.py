"""nimbus runtime client for Python: runs unmodified AWS Lambda handlers.

Started by the platform inside an instance as

    /usr/bin/python3 -u /var/runtime/python/bootstrap.py [module.function]

with cwd = LAMBDA_TASK_ROOT (/var/task); bootstrap.py imports this module and
calls main(). Started "primed" (NIMBUS_PRIMED_FD in its environment), it
first waits, loaded, for the instance it will run: see _receive_instance().
Started as a fork template (NIMBUS_TEMPLATE_FD), it runs init once and then
forks instances from its initialised state: see nimbus_fork_template.py. Imported rather than run as a script so that Python loads the
bytecode nimbus compiled at build time (__pycache__/) instead of compiling
this file at every cold start. It speaks the Lambda Runtime API
(plain HTTP/1.1 to AWS_LAMBDA_RUNTIME_API) and mirrors the behaviour of AWS's
own client, awslambdaric 4.x: handler loading and its Runtime.* init errors,
the context object, JSON (un)marshalling, error bodies, and log formats.
Standard library only; imports are kept to the minimum so that the client adds
little to the interpreter's start-up (see runtimes/README.md).
"""

import json
import os
import sys
import time

import _socket  # socket.py would add ~4 ms of imports (selectors, enum, ...)

API_PREFIX = "/2018-06-01/runtime"
CONNECT_TIMEOUT = 2.0  # seconds; aws-lambda-cpp uses 1 s, no read timeout
USER_AGENT = "nimbus-python/%d.%d.%d" % sys.version_info[:3]

_LAMBDA_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the "
    "function code. However, in rare cases, a Lambda runtime update can cause "
    "unexpected function behavior. For functions using managed runtimes, runtime "
    "updates can be triggered by a function change, or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the "
    "INIT_START log entry. If this error correlates with a change in the runtime "
    "version, you may be able to mitigate this error by temporarily rolling back to "
    "the previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)

# Request id / tenant id of the invocation being handled (for log lines).
_REQUEST_ID = None
_TENANT_ID = None
_JSON_LOGS = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"


# --------------------------------------------------------------------------
# Errors


class FaultException(Exception):
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    MARSHAL_ERROR = "Runtime.MarshalError"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


class RuntimeAPIError(Exception):
    """The Runtime API answered unexpectedly or could not be reached."""


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    """traceback.format_list() items for tb, minus the client's leading frames."""
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if not frame[0].endswith(("/bootstrap.py", "/nimbus_lambda_runtime.py")):
            frames = frames[i:]
            break
    return traceback.format_list(frames)


def _safe_str(value):
    try:
        return str(value)
    except Exception:  # a broken __str__ must not kill the runtime
        return "<unprintable %s object>" % type(value).__name__


def _fault_result(exc_info, invoke_id=None):
    etype, value, tb = exc_info
    return make_error(_safe_str(value), etype.__name__, _user_frames(tb), invoke_id)


# --------------------------------------------------------------------------
# Runtime API client: one persistent HTTP/1.1 connection, reopened when the
# server has closed it.


class _StaleConnection(Exception):
    pass


_SAFE_PATH_BYTES = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
)


def _quote(text):
    raw = text.encode("utf-8")
    if all(c in _SAFE_PATH_BYTES for c in raw):
        return text
    return "".join(chr(c) if c in _SAFE_PATH_BYTES else "%%%02X" % c for c in raw)


def _split_address(address):
    if address.startswith("["):  # [v6]:port
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RuntimeAPIError("invalid AWS_LAMBDA_RUNTIME_API %r (want host:port)" % address)
    return host, int(port)


class RuntimeClient:
    def __init__(self, address):
        self.address = address
        self.host, self.port = _split_address(address)
        self.sock = None
        self.buf = bytearray()
        self.sent_get = None  # a pipelined GET whose answer is still on the connection

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = bytearray()
        self.sent_get = None

    def _connect(self):
        # bytes host: a str would make getaddrinfo import encodings.idna (~3 ms)
        host = self.host.encode("ascii") if self.host.isascii() else self.host
        error = None
        try:
            addresses = _socket.getaddrinfo(host, self.port, 0, _socket.SOCK_STREAM)
        except OSError as e:
            addresses, error = [], e
        for family, kind, proto, _, addr in addresses:
            sock = _socket.socket(family, kind, proto)
            try:
                sock.settimeout(CONNECT_TIMEOUT)
                sock.connect(addr)
            except OSError as e:
                error = e
                sock.close()
                continue
            sock.settimeout(None)  # /next blocks for as long as it takes
            try:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            except OSError:
                pass
            self.sock = sock
            self.buf = bytearray()
            return
        raise RuntimeAPIError("cannot connect to the Runtime API at %s: %s" % (self.address, error))

    def request(self, method, path, body=None, headers=None, then_get=None):
        """Returns (status, headers with lower-case names, body bytes).

        then_get: a GET sent right behind this request in the same write
        (HTTP/1.1 pipelining); its answer stays on the connection for
        read_pipelined(). A result and the next /next go out together that way."""
        head = ["%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n" % (method, path, self.address, USER_AGENT)]
        if headers:
            for name, value in headers.items():
                head.append("%s: %s\r\n" % (name, value))
        if body is not None:
            head.append("Content-Length: %d\r\n" % len(body))
        head.append("\r\n")
        data = "".join(head).encode("latin-1")
        if body is not None and len(body) < 65536:
            data, body = data + body, None
        tail = b""
        if then_get is not None:
            tail = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n\r\n" % (then_get, self.address, USER_AGENT)).encode("latin-1")
            if body is None:
                data, tail = data + tail, b""
        for _ in range(2):
            reused = self.sock is not None
            if not reused:
                self._connect()
            try:
                self.sock.sendall(data)
                if body is not None:
                    self.sock.sendall(body)
                if tail:
                    self.sock.sendall(tail)
                self.sent_get = then_get
                return self._read_response(method)
            except _StaleConnection:
                self.close()
                if not reused:
                    raise RuntimeAPIError("the Runtime API closed the connection without answering %s %s" % (method, path))
            except (BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if not reused:
                    raise RuntimeAPIError("%s %s failed: %s" % (method, path, e))
            except OSError as e:
                self.close()
                raise RuntimeAPIError("%s %s failed: %s" % (method, path, e))
        raise RuntimeAPIError("%s %s failed" % (method, path))  # not reached

    def _fill(self, got_any):
        chunk = self.sock.recv(262144)
        if not chunk:
            if got_any:
                raise RuntimeAPIError("the Runtime API closed the connection mid-response")
            raise _StaleConnection()
        self.buf += chunk

    def _read_response(self, method):
        buf = self.buf
        got_any = bool(buf)
        while True:  # skip 1xx interim responses (e.g. 100 Continue)
            start = 0
            while True:
                end = buf.find(b"\r\n\r\n", start)
                if end >= 0:
                    break
                start = max(0, len(buf) - 3)
                self._fill(got_any)
                got_any = True
            # UTF-8, as aws-lambda-cpp hands header bytes to awslambdaric (Client-Context may hold any JSON)
            lines = bytes(buf[:end]).decode("utf-8", "replace").split("\r\n")
            del buf[: end + 4]
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise RuntimeAPIError("malformed status line from the Runtime API: %r" % lines[0])
            status = int(parts[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if not (100 <= status < 200):
                break
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            length = int(headers["content-length"])
            while len(buf) < length:
                self._fill(True)
            body = bytes(buf[:length])
            del buf[:length]
        else:  # body ends when the server closes the connection
            try:
                while True:
                    self._fill(True)
            except RuntimeAPIError:
                pass
            body = bytes(buf)
            self.close()
            return status, headers, body
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _read_chunked(self):
        buf = self.buf
        out = []
        while True:
            while b"\r\n" not in buf:
                self._fill(True)
            end = buf.find(b"\r\n")
            size = int(bytes(buf[:end]).split(b";", 1)[0].strip() or b"0", 16)
            del buf[: end + 2]
            if size == 0:  # trailers, then an empty line
                while True:
                    while b"\r\n" not in buf:
                        self._fill(True)
                    end = buf.find(b"\r\n")
                    del buf[: end + 2]
                    if end == 0:
                        return b"".join(out)
            while len(buf) < size + 2:
                self._fill(True)
            out.append(bytes(buf[:size]))
            del buf[: size + 2]

    # -- Runtime API calls --

    def read_pipelined(self, path):
        """The answer to `path` when it was sent behind the previous request;
        None when it was not (or the connection went away meanwhile: the
        caller then asks again)."""
        if self.sent_get != path or self.sock is None:
            return None
        self.sent_get = None
        try:
            return self._read_response("GET")
        except (_StaleConnection, BrokenPipeError, ConnectionResetError):
            self.close()
            return None
        except OSError as e:
            self.close()
            raise RuntimeAPIError("GET %s failed: %s" % (path, e))

    def wait_next_invocation(self):
        path = API_PREFIX + "/invocation/next"
        answer = self.read_pipelined(path)
        status, headers, body = answer if answer is not None else self.request("GET", path)
        if status != 200:
            raise RuntimeAPIError(
                "Request to Lambda Runtime 'next' endpoint failed. Reason: '%d'. Response body: '%s'"
                % (status, body.decode("utf-8", "replace"))
            )
        return headers, body

    def _post(self, what, path, body, headers):
        status, _, resp = self.request("POST", path, body, headers, then_get=API_PREFIX + "/invocation/next")
        if not (200 <= status < 300):
            raise RuntimeAPIError(
                "Request to Lambda Runtime '%s' endpoint failed. Reason: '%d'. Response body: '%s'"
                % (what, status, resp.decode("utf-8", "replace"))
            )

    def post_invocation_result(self, invoke_id, data, content_type):
        if isinstance(data, str):
            data = data.encode("utf-8")
        path = "%s/invocation/%s/response" % (API_PREFIX, _quote(invoke_id))
        self._post("response", path, data, {"Content-Type": content_type})

    def post_invocation_error(self, invoke_id, error_json):
        # Like awslambdaric: no Lambda-Runtime-Function-Error-Type header here,
        # the type is in the body.
        path = "%s/invocation/%s/error" % (API_PREFIX, _quote(invoke_id))
        self._post("error", path, error_json.encode("utf-8"), {"Content-Type": "application/json"})

    def post_init_error(self, error):
        headers = {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": _header_value(error["errorType"])}
        status, _, resp = self.request("POST", API_PREFIX + "/init/error", to_json(error).encode("utf-8"), headers)
        if status != 202:
            raise RuntimeAPIError(
                "Request to Lambda Runtime 'init/error' endpoint failed. Reason: '%d'. Response body: '%s'"
                % (status, resp.decode("utf-8", "replace"))
            )


def _header_value(text):
    return "".join(c for c in str(text) if " " <= c <= "~") or "Runtime.Unknown"


# --------------------------------------------------------------------------
# Marshalling


def _json_default(obj):
    import decimal

    if isinstance(obj, decimal.Decimal):  # simplejson in awslambdaric accepts Decimal
        if obj.is_nan():
            return float("nan")
        if obj == obj.to_integral_value() and obj.as_tuple().exponent >= 0:
            return int(obj)
        return float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def _make_encoder():
    # awslambdaric writes non-ASCII characters unescaped only on python3.12.
    return json.JSONEncoder(
        default=_json_default, ensure_ascii=os.environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12"
    )


_ENCODER = _make_encoder()


def to_json(obj):
    return _ENCODER.encode(obj)


def unmarshal_request(body, content_type):
    if content_type != "application/json":  # exact compare, as awslambdaric
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % e)


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return _ENCODER.encode(response), "application/json"
    except Exception as e:
        raise FaultException(FaultException.MARSHAL_ERROR, "Unable to marshal response: %s" % e)


# --------------------------------------------------------------------------
# Context


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (k, getattr(self, k)) for k in self.__slots__)


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _obj_from_dict(cls, data):
    if data is None:
        return None
    obj = cls()
    get = data.get if isinstance(data, dict) else (lambda _k, _d=None: None)
    for field in cls.__slots__:
        setattr(obj, field, get(field, None))
    return obj


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR, "Unable to parse %s JSON: %s" % (name, e)
        )


class LambdaContext:
    def __init__(self, invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms,
                 invoked_function_arn=None, tenant_id=None):
        env = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        w3c = {}
        if isinstance(client_context, dict) and "w3c" in client_context:
            raw = client_context.pop("w3c")
            if isinstance(raw, dict):
                w3c = {k: raw[k] for k in ("traceparent", "tracestate", "baggage") if isinstance(raw.get(k), str)}
        self._w3c_fields = w3c
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if isinstance(cognito_identity, dict):
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self):
        return dict(self._w3c_fields)

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,"
            "identity=%s,tenant_id=%s])"
            % (self.aws_request_id, self.log_group_name, self.log_stream_name, self.function_name,
               self.memory_limit_in_mb, self.function_version, self.invoked_function_arn,
               self.client_context, self.identity, self.tenant_id)
        )


# --------------------------------------------------------------------------
# Output and logging


def _flush_output():
    """Make sure everything written so far is in the pipes before posting."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _setup_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(write_through=True)
        except Exception:
            pass


def _replace_indentation(line):
    count = len(line) - len(line.lstrip(" "))
    return "\u00a0" * count + line[count:]


def log_error(error):
    """Lambda's report of an unhandled error, written to stdout like awslambdaric."""
    if _JSON_LOGS:
        line = to_json(dict({"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "level": "ERROR"}, **error))
        sys.stdout.write(line + "\n")
        return
    description = "[ERROR]"
    error_type = error.get("errorType")
    error_message = error.get("errorMessage")
    if error_type:
        description += " " + error_type
    if error_message:
        if error_type:
            description += ":"
        description += " " + error_message
    lines = [description]
    stack_trace = error.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
            else:
                lines.extend(_replace_indentation(l) for l in element.splitlines())
    sys.stdout.write("\r".join(lines) + "\n")


class _ConfigureLoggingOnImport:
    """sys.meta_path hook: configures the root logger right after the first
    `import logging` (by user code, a library, or this client's error path).

    Importing logging costs ~14 ms, more than the rest of the client; many
    handlers never log. Whoever imports it first gets it already configured,
    so nothing can log before the Lambda handler is installed."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        spec = None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec = find_spec(name, path, target)
                if spec is not None:
                    break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_configure(module):
            exec_module(module)
            _configure_logging(module)

        spec.loader.exec_module = exec_and_configure
        return spec


def _install_logging():
    if "logging" in sys.modules:
        _configure_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _ConfigureLoggingOnImport())


def _configure_logging(logging):
    try:
        _setup_logging(logging)
    except Exception as e:  # e.g. a user module named "logging"
        sys.stderr.write("nimbus python runtime: cannot configure logging: %r\n" % (e,))


def _setup_logging(logging):
    logging.Formatter.converter = time.gmtime

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _REQUEST_ID or ""
            record.tenant_id = _TENANT_ID
            return True

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                msg = self.format(record)
                if not msg.endswith("\n"):
                    msg += "\n"
                sys.stdout.write(msg)
            except Exception:
                self.handleError(record)

    handler = LambdaLoggerHandler()
    if _JSON_LOGS:
        handler.setFormatter(_json_formatter(logging))
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        ))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    # As awslambdaric: the root level is only changed when AWS_LAMBDA_LOG_LEVEL
    # is set (TRACE maps to DEBUG); otherwise it stays at logging's WARNING.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        level = {"TRACE": "DEBUG"}.get(level.upper(), level.upper())
        if level in logging._nameToLevel:
            root.setLevel(level)
    root.addHandler(handler)


_RESERVED_LOG_FIELDS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
    "threadName", "processName", "process", "aws_request_id", "tenant_id", "_frame_type", "taskName",
))


def _json_formatter(logging):
    encoder = json.JSONEncoder(ensure_ascii=False, default=str)

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            levelno = min(50, max(0, record.levelno)) // 10 * 10
            created = record.created
            result = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
                + ".%03dZ" % (int(created * 1000) % 1000),
                "level": logging.getLevelName(levelno),
                "message": record.getMessage(),
                "logger": record.name,
                "requestId": getattr(record, "aws_request_id", None),
            }
            if record.exc_info:
                import traceback

                result["stackTrace"] = traceback.format_tb(record.exc_info[2])
                result["errorType"] = record.exc_info[0].__name__
                result["errorMessage"] = str(record.exc_info[1])
                result["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _RESERVED_LOG_FIELDS and key not in result:
                    result[key] = value
            return encoder.encode({k: v for k, v in result.items() if v is not None}) + "\n"

    return JsonFormatter()


# --------------------------------------------------------------------------
# Handler loading


def _setup_sys_path(task_root):
    # The script's own directory (/var/runtime/python) must not shadow user
    # modules; the task root comes first, then layer paths like Lambda's.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    extra = [task_root]
    for layer_dir in ("/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2], "/opt/python"):
        if os.path.isdir(layer_dir):
            extra.append(layer_dir)
    sys.path[0:0] = [p for p in extra if p not in sys.path]


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME, "Bad handler '%s': %s" % (handler, e))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module %s as a handler module" % modname,
            )
        import importlib

        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(FaultException.IMPORT_MODULE_ERROR, "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR, "Syntax error in module '%s': %s" % (modname, e), trace
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(FaultException.HANDLER_NOT_FOUND, "Handler '%s' missing on module '%s'" % (fname, modname))


# --------------------------------------------------------------------------
# Invocation loop


def handle_event_request(client, request_handler, headers, body):
    invoke_id = headers.get("lambda-runtime-aws-request-id", "")
    error_result = None
    try:
        client_context = headers.get("lambda-runtime-client-context")
        cognito_identity = headers.get("lambda-runtime-cognito-identity")
        try:
            deadline = int(headers.get("lambda-runtime-deadline-ms") or 0)
        except ValueError:
            deadline = 0
        context = LambdaContext(
            invoke_id,
            _parse_json_header(client_context, "Client Context") if client_context else None,
            _parse_json_header(cognito_identity, "Cognito Identity") if cognito_identity else None,
            deadline,
            headers.get("lambda-runtime-invoked-function-arn"),
            headers.get("lambda-runtime-aws-tenant-id") or None,
        )
        event = unmarshal_request(body, headers.get("content-type"))
        response = request_handler(event, context)
        result, content_type = marshal_response(response)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error_result = _fault_result(sys.exc_info(), invoke_id)

    if error_result is not None:
        log_error(error_result)
        _flush_output()
        client.post_invocation_error(invoke_id, to_json(error_result))
    else:
        _flush_output()
        client.post_invocation_result(invoke_id, result, content_type)


def _fatal(message):
    _flush_output()
    sys.stderr.write("nimbus python runtime: %s\n" % message)
    sys.stderr.flush()
    sys.exit(1)


def _receive_instance():
    """A primed runtime: started in a sandbox of its own before its function
    was known (RuntimeTemplate in src/sandbox/launcher.h). It says it is
    ready with one byte on NIMBUS_PRIMED_FD, then reads the instance's
    environment until EOF; by then the function's code is at /var/task."""
    global _JSON_LOGS, _ENCODER
    import importlib  # what loading the handler needs, loaded while waiting
    import logging  # noqa: F401

    fd = int(os.environ["NIMBUS_PRIMED_FD"])
    os.write(fd, b"r")
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    if not chunks:
        sys.exit(0)  # discarded before it got an instance
    environment = {}
    for entry in json.loads(b"".join(chunks))["env"]:
        key, _, value = entry.partition("=")
        environment[key] = value
    os.environ.clear()
    os.environ.update(environment)
    _JSON_LOGS = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    _ENCODER = _make_encoder()
    os.chdir(os.environ.get("LAMBDA_TASK_ROOT") or "/var/task")
    importlib.invalidate_caches()  # /var/task was an empty directory until now


def _warm_up():
    """One invocation of a no-op handler through the runtime's own code, over
    a socket pair with canned Runtime API answers: run in a fork template's
    spare, so that the pages the first real invocation touches are copied
    before the instance is wanted."""
    ours, theirs = _socket.socketpair()
    try:
        theirs.sendall(
            b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: warm-up\r\n"
            b"Lambda-Runtime-Deadline-Ms: 0\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n{}"
            b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}"
        )
        ours.settimeout(1.0)  # a canned answer that does not parse must not hang the spare
        client = RuntimeClient("127.0.0.1:9")
        client.sock = ours
        headers, body = client.wait_next_invocation()
        handle_event_request(client, lambda event, context: {"warm": True}, headers, body)
    except (OSError, RuntimeAPIError):
        pass
    finally:
        ours.close()
        theirs.close()


def _fork_instances(fork_template):
    """A fork template (nimbus_fork_template.py): init ran; new instances
    are forked from here, and this returns in each of them."""
    global _JSON_LOGS, _ENCODER
    fork_template.serve(_flush_output, _warm_up)
    _JSON_LOGS = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    _ENCODER = _make_encoder()


def main():
    global _REQUEST_ID, _TENANT_ID
    if "NIMBUS_PRIMED_FD" in os.environ:
        _receive_instance()
    template = "NIMBUS_TEMPLATE_FD" in os.environ
    handler_name = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else os.environ.get("_HANDLER", "")
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or "/var/task"
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        _fatal("AWS_LAMBDA_RUNTIME_API is not set")
    client = fork_template = None
    if template:
        # Imported before the runtime's directory leaves sys.path.
        import nimbus_fork_template as fork_template
    else:  # a template's instances open their own connection
        try:
            client = RuntimeClient(address)
        except RuntimeAPIError as e:
            _fatal(str(e))

    _setup_sys_path(task_root)
    _setup_streams()
    _install_logging()

    try:
        request_handler = get_handler(handler_name)
    except Exception as e:
        if isinstance(e, FaultException):
            error_result = make_error(e.msg, e.exception_type, e.trace)
        else:
            error_result = _fault_result(sys.exc_info())
        import logging

        logging.warning(_LAMBDA_WARNING)
        log_error(error_result)
        _flush_output()
        try:
            if client is not None:
                client.post_init_error(error_result)
        except RuntimeAPIError as post_error:
            sys.stderr.write("nimbus python runtime: %s\n" % post_error)
        sys.exit(1)

    if template:
        _fork_instances(fork_template)
        try:
            client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API") or "")
        except RuntimeAPIError as e:
            _fatal(str(e))

    try:
        while True:
            headers, body = client.wait_next_invocation()
            _REQUEST_ID = headers.get("lambda-runtime-aws-request-id")
            _TENANT_ID = headers.get("lambda-runtime-aws-tenant-id") or None
            trace_id = headers.get("lambda-runtime-trace-id")
            if trace_id:
                os.environ["_X_AMZN_TRACE_ID"] = trace_id
            else:
                os.environ.pop("_X_AMZN_TRACE_ID", None)
            handle_event_request(client, request_handler, headers, body)
    except RuntimeAPIError as e:
        # awslambdaric raises here and the process dies; do the same, clearly.
        _fatal(str(e))


if __name__ == "__main__":
    main()

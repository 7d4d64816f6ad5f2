"""The example function the quick start deploys: an unmodified Lambda handler."""
import json

invocations = 0  # module globals survive between invocations on a warm instance


def handler(event, context):
    global invocations
    invocations += 1
    event = event or {}
    # {"name": ...} when invoked directly; ?name=... through the HTTP gateway.
    name = event.get("name") or (event.get("queryStringParameters") or {}).get("name", "world")
    return {
        "message": f"Hello, {name}!",
        "function": context.function_name,
        "request_id": context.aws_request_id,
        "warm_invocations": invocations,
    }

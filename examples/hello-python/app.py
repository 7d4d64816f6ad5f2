"""The example function the quick start deploys: an unmodified Lambda handler."""
import json

invocations = 0  # module globals survive between invocations on a warm instance


def handler(event, context):
    global invocations
    invocations += 1
    name = (event or {}).get("name", "world")
    return {
        "message": f"Hello, {name}!",
        "function": context.function_name,
        "request_id": context.aws_request_id,
        "warm_invocations": invocations,
    }

"""A product catalogue behind the nimbus HTTP gateway: an unmodified Lambda
handler for API Gateway payload format 2.0.

    GET    /products         list
    POST   /products         create   {"name": ..., "price": ...}
    GET    /products/{id}    read
    PUT    /products/{id}    replace  {"name": ..., "price": ...}
    DELETE /products/{id}    delete

Products live in a JSON file under /tmp. Each instance has its own private
/tmp, so this is a demo store: it lasts as long as the warm instance does.
"""
import base64
import json
import os
import uuid

STORE = os.environ.get("PRODUCTS_FILE", "/tmp/products.json")


def load():
    try:
        with open(STORE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(products):
    tmp = STORE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(products, f)
    os.replace(tmp, STORE)


def reply(status, body=None):
    response = {"statusCode": status, "headers": {"content-type": "application/json"}}
    if body is not None:
        response["body"] = json.dumps(body)
    return response


def parse_product(event):
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8", "replace")
    try:
        data = json.loads(raw)
    except ValueError:
        return None, "body must be JSON"
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        return None, "name (a non-empty string) is required"
    price = data.get("price", 0)
    if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
        return None, "price must be a number >= 0"
    return {"name": data["name"], "price": price}, None


def handler(event, context):
    method = event["requestContext"]["http"]["method"]
    product_id = (event.get("pathParameters") or {}).get("id")
    products = load()

    if product_id is None:
        if method == "GET":
            return reply(200, {"products": sorted(products.values(), key=lambda p: p["id"])})
        if method == "POST":
            product, error = parse_product(event)
            if error:
                return reply(400, {"message": error})
            product["id"] = uuid.uuid4().hex[:12]
            products[product["id"]] = product
            save(products)
            return reply(201, product)
        return reply(405, {"message": "method not allowed"})

    if product_id not in products and method != "PUT":
        return reply(404, {"message": f"no product {product_id}"})
    if method == "GET":
        return reply(200, products[product_id])
    if method == "PUT":
        product, error = parse_product(event)
        if error:
            return reply(400, {"message": error})
        product["id"] = product_id
        created = product_id not in products
        products[product_id] = product
        save(products)
        return reply(201 if created else 200, product)
    if method == "DELETE":
        del products[product_id]
        save(products)
        return reply(204)
    return reply(405, {"message": "method not allowed"})

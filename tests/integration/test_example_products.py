"""examples/products-python: deploy it with the nimbus CLI, add its routes,
and drive the CRUD API with curl through the HTTP gateway."""

import json
import os
import subprocess

from harness import HOST_CURL, DaemonTestCase

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "products-python")


class ProductsExampleTest(DaemonTestCase):

    def curl(self, method, path, body=None):
        """(status, parsed JSON body or None) of one curl request to the gateway."""
        cmd = [HOST_CURL, "-s", "-X", method, "-o", "-", "-w", "\n%{http_code}", self.daemon.gateway + path]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        text, _, status = p.stdout.rpartition("\n")
        return int(status), (json.loads(text) if text.strip() else None)

    def test_crud_through_the_gateway(self):
        rc, out, err = self.daemon.cli("deploy", EXAMPLE, "--name", "products", "--runtime", "python3.12",
                                       "--handler", "app.handler", "--http", "GET /products", "--http",
                                       "POST /products")
        self.assertEqual(rc, 0, err)
        for key in ("GET /products/{id}", "PUT /products/{id}", "DELETE /products/{id}"):
            rc, out, err = self.daemon.cli("route", "add", key, "--function", "products")
            self.assertEqual(rc, 0, err)

        self.assertEqual(self.curl("GET", "/products"), (200, {"products": []}))
        status, lamp = self.curl("POST", "/products", {"name": "lamp", "price": 25})
        self.assertEqual(status, 201, lamp)
        self.assertEqual((lamp["name"], lamp["price"]), ("lamp", 25))
        status, desk = self.curl("POST", "/products", {"name": "desk", "price": 120.5})
        self.assertEqual(status, 201, desk)

        self.assertEqual(self.curl("GET", f"/products/{lamp['id']}"), (200, lamp))
        status, listed = self.curl("GET", "/products")
        self.assertEqual(status, 200)
        self.assertEqual(sorted(p["name"] for p in listed["products"]), ["desk", "lamp"])

        status, updated = self.curl("PUT", f"/products/{lamp['id']}", {"name": "lamp", "price": 30})
        self.assertEqual((status, updated["price"]), (200, 30))
        self.assertEqual(self.curl("GET", f"/products/{lamp['id']}")[1]["price"], 30)

        self.assertEqual(self.curl("DELETE", f"/products/{lamp['id']}"), (204, None))
        self.assertEqual(self.curl("GET", f"/products/{lamp['id']}")[0], 404)
        self.assertEqual([p["name"] for p in self.curl("GET", "/products")[1]["products"]], ["desk"])

        # Bad input is the function's to reject; unknown routes are the gateway's.
        status, body = self.curl("POST", "/products", {"price": 3})
        self.assertEqual((status, body["message"]), (400, "name (a non-empty string) is required"))
        self.assertEqual(self.curl("PATCH", f"/products/{desk['id']}"), (404, {"message": "Not Found"}))

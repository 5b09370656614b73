"""Network grants from Python: `allowed_hosts=` lets the example guest
`wasm_module_net` fetch from a server on 127.0.0.1, anything else is a
`PolicyDenied` (also a `PermissionError`), and a pickled plugin keeps its
grants, no more."""

import http.server
import pickle
import threading

import pytest

import wasm_study
from conftest import guest

BODY = b"hello from python's http.server"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.hits = 0
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/"


def test_a_granted_host_is_fetched_and_others_refused(server):
    port = server.server_address[1]
    net = guest("wasm_module_net.wasm")
    plugin = wasm_study.Plugin(net, allowed_hosts=[f"127.0.0.1:{port}"], timeout="5s")
    assert plugin.call("fetch", _url(server).encode()) == BODY
    other = wasm_study.Plugin(net, allowed_hosts=[f"127.0.0.1:{port + 1 if port < 65535 else 1}"])
    with pytest.raises(wasm_study.PolicyDenied, match=f"127.0.0.1:{port}") as e:
        other.call("fetch", _url(server).encode())
    assert isinstance(e.value, PermissionError)
    assert server.hits == 1
    # A pickled plugin carries its grants exactly.
    again = pickle.loads(pickle.dumps(plugin))
    assert again.call("fetch", _url(server).encode()) == BODY
    assert again.policy["allowed_hosts"] == [f"127.0.0.1:{port}"]


def test_no_grant_no_load_and_bad_grants_are_invalid():
    net = guest("wasm_module_net.wasm")
    with pytest.raises(wasm_study.PolicyDenied, match="wasm_host.http_request"):
        wasm_study.Plugin(net)
    with pytest.raises(wasm_study.InvalidPolicy, match="allowed host"):
        wasm_study.Plugin(net, allowed_hosts=["::1"])

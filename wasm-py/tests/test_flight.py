"""`wasm-app serve` with pyarrow's Flight client: the arrow-udf-flight
protocol (version, listings, exchanges of many batches equal to the CLI),
errors that leave the server serving, hostile modules (a loop, a memory
bomb) while other clients are served, the concurrency bound, a client
that goes away, the token, and a graceful stop on SIGTERM.
"""

import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as fl
import pyarrow.ipc
import pytest

from conftest import cli_process, documents, guest_bombing, guest_spinning, sorted_table

pytestmark = pytest.mark.timeout(120)

TOKEN = "test-token-7c1e"
TOKENIZE_COLUMNS = """args = [{ name = "id", type = "uint64" }, { name = "text", type = "utf8" }]
returns = [{ name = "doc_id", type = "uint64" }, { name = "position", type = "uint32" }, { name = "token", type = "utf8" }]"""


def functions_file(d: pathlib.Path, module2: pathlib.Path) -> pathlib.Path:
    (d / "spin.wat").write_bytes(guest_spinning())
    (d / "bomb.wat").write_bytes(guest_bombing())
    path = d / "functions.toml"
    path.write_text(
        f"""
[[function]]
name = "tokenize"
module = "{module2}"
command = "tokenize"
config = {{ column = "text", id = "id" }}
{TOKENIZE_COLUMNS}
max-memory = "64MiB"
timeout = "5s"

[[function]]
name = "spin"
module = "spin.wat"
command = "x"
args = [{{ name = "id", type = "uint64" }}]
returns = [{{ name = "id", type = "uint64" }}]
timeout = "1s"

[[function]]
name = "bomb"
module = "bomb.wat"
command = "x"
args = [{{ name = "id", type = "uint64" }}]
returns = [{{ name = "id", type = "uint64" }}]
max-memory = "16MiB"

[[function]]
name = "misdeclared"
module = "{module2}"
command = "echo"
args = [{{ name = "id", type = "uint64" }}, {{ name = "text", type = "utf8" }}]
returns = [{{ name = "id", type = "int64" }}]
"""
    )
    return path


class Server:
    """A `wasm-app serve` process on a free loopback port."""

    def __init__(self, cli, functions, *flags):
        self.proc = subprocess.Popen(
            [str(cli), "serve", "--listen", "127.0.0.1:0", "--functions", str(functions), *flags],
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stderr.readline()
        match = re.search(r"listening on (\S+)", line)
        assert match, f"no 'listening' line: {line!r} {self.proc.poll()}"
        self.location = f"grpc://{match.group(1)}"

    def client(self) -> fl.FlightClient:
        return fl.FlightClient(self.location)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        return code, self.proc.stderr.read()


def options(token=TOKEN, timeout=60):
    headers = [(b"authorization", b"Bearer " + token.encode())] if token else []
    return fl.FlightCallOptions(headers=headers, timeout=timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory, cli, module2):
    d = tmp_path_factory.mktemp("serve")
    (d / "token").write_text(TOKEN + "\n")
    s = Server(cli, functions_file(d, module2), "--token-file", str(d / "token"), "--max-concurrent", "4")
    yield s
    code, err = s.stop()
    assert code == 0, err


def exchange(client, name, batches, schema, opts=None):
    """Writes `batches` on a thread while reading the results (a client
    that writes everything before reading can stall on flow control)."""
    writer, reader = client.do_exchange(fl.FlightDescriptor.for_path(name), options=opts or options())
    failure = []

    def write():
        try:
            writer.begin(schema)
            for b in batches:
                writer.write_batch(b)
            writer.done_writing()
        except Exception as e:  # the read side reports the server's error
            failure.append(e)

    t = threading.Thread(target=write)
    t.start()
    try:
        return reader.read_all()
    finally:
        t.join()
        writer.close()


def docs(n, seed=0):
    t = documents(n, seed).rename_columns(["id", "text"])
    return t


def test_protocol_version_and_listings(server):
    client = server.client()
    [answer] = list(client.do_action(fl.Action("protocol_version", b""), options=options()))
    assert answer.body.to_pybytes() == b"\x02"
    names = {i.descriptor.path[0].decode() for i in client.list_flights(options=options())}
    assert names == {"tokenize", "spin", "bomb", "misdeclared"}
    info = client.get_flight_info(fl.FlightDescriptor.for_path("tokenize"), options=options())
    assert info.total_records == 2
    assert [(f.name, f.type) for f in info.schema] == [
        ("id", pa.uint64()),
        ("text", pa.string()),
        ("doc_id", pa.uint64()),
        ("position", pa.uint32()),
        ("token", pa.string()),
    ]


def test_many_batches_equal_the_cli(server, cli, module2, tmp_path):
    table = docs(5000)
    batches = table.to_batches(max_chunksize=250)
    got = exchange(server.client(), "tokenize", batches, table.schema)
    path = tmp_path / "in.arrow"
    with pa.ipc.new_file(path, table.schema) as w:
        w.write_table(table)
    want = cli_process(cli, module2, "tokenize", [path], {"column": "text", "id": "id"}, tmp_path)
    assert got.num_rows == want.num_rows > 5000
    assert [(f.name, f.type) for f in got.schema] == [(f.name, f.type) for f in want.schema]
    assert sorted_table(got, ["doc_id", "position"]).to_pylist() == sorted_table(want, ["doc_id", "position"]).to_pylist()


def test_errors_are_flight_errors_and_the_server_goes_on(server):
    client = server.client()
    table = docs(10)
    with pytest.raises(pa.ArrowException, match="no function 'nope'"):
        exchange(client, "nope", table.to_batches(), table.schema)
    wrong = pa.table({"id": pa.array([1], pa.int32()), "text": ["a"]})
    with pytest.raises(pa.ArrowException, match="takes"):
        exchange(client, "tokenize", wrong.to_batches(), wrong.schema)
    with pytest.raises(pa.ArrowException, match="declares"):
        exchange(client, "misdeclared", table.to_batches(), table.schema)
    with pytest.raises(fl.FlightUnauthenticatedError):
        list(client.list_flights(options=options(token=None)))
    with pytest.raises(fl.FlightUnauthenticatedError):
        exchange(client, "tokenize", table.to_batches(), table.schema, options(token="wrong-token-7c1e"))
    assert exchange(client, "tokenize", table.to_batches(), table.schema).num_rows > 10


def test_hostile_modules_fail_alone(server):
    """A loop and a memory bomb fail their own exchanges, within their
    limits, while another client's exchanges go on."""
    ids = pa.table({"id": pa.array([1, 2, 3], pa.uint64())})
    table = docs(2000)
    served = []

    def steady():
        for _ in range(5):
            served.append(exchange(server.client(), "tokenize", table.to_batches(max_chunksize=500), table.schema).num_rows)

    t = threading.Thread(target=steady)
    t.start()
    start = time.monotonic()
    with pytest.raises(fl.FlightTimedOutError, match="time limit"):
        exchange(server.client(), "spin", ids.to_batches(), ids.schema)
    assert time.monotonic() - start < 10
    with pytest.raises(pa.ArrowException, match="memory limit"):
        exchange(server.client(), "bomb", ids.to_batches(), ids.schema)
    t.join()
    assert len(served) == 5 and len(set(served)) == 1


def test_concurrent_clients(server):
    tables = [docs(1500, seed=i * 1500) for i in range(4)]
    want = [sorted_table(exchange(server.client(), "tokenize", t.to_batches(), t.schema), ["doc_id", "position"]) for t in tables]
    got = [None] * 4

    def run(i):
        got[i] = sorted_table(
            exchange(server.client(), "tokenize", tables[i].to_batches(max_chunksize=100), tables[i].schema),
            ["doc_id", "position"],
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want


HOLDER = """
import sys, time, pyarrow as pa, pyarrow.flight as fl
client = fl.FlightClient(sys.argv[1])
table = pa.table({"id": pa.array([1], pa.uint64()), "text": ["held"]})
writer, reader = client.do_exchange(fl.FlightDescriptor.for_path("tokenize"))
writer.begin(table.schema)
writer.write_table(table)
reader.read_chunk()
print("holding", flush=True)
time.sleep(600)
"""


def test_busy_slots_refuse_and_a_gone_client_frees_its_slot(tmp_path, cli, module2):
    s = Server(cli, functions_file(tmp_path, module2), "--max-concurrent", "1", "--queue-timeout", "300ms")
    holder = None
    try:
        table = docs(100)
        # A client process whose exchange holds the only slot, then dies.
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, s.location], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(pa.ArrowException, match="busy"):
            exchange(s.client(), "tokenize", table.to_batches(), table.schema, options(token=None))
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 20
        while True:
            try:
                out = exchange(s.client(), "tokenize", table.to_batches(), table.schema, options(token=None))
                break
            except pa.ArrowException:
                assert time.monotonic() < deadline, "the slot was never freed"
                time.sleep(0.2)
        assert out.num_rows > 100
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        code, err = s.stop()
    assert code == 0, err


SLOW = """
import sys, time, pyarrow as pa, pyarrow.flight as fl
client = fl.FlightClient(sys.argv[1])
# Results of ~10 MB per batch: the client's flow-control windows fill after
# a few, and then the server cannot hand it more.
table = pa.table({"id": pa.array(range(20000), pa.uint64()), "text": ["x " * 50] * 20000})
writer, reader = client.do_exchange(fl.FlightDescriptor.for_path("tokenize"))
writer.begin(table.schema)
if sys.argv[2] == "metadata":
    while True:  # no data, only metadata: must not keep the exchange alive
        writer.write_metadata(b"x")
        time.sleep(0.2)
print("writing", flush=True)
for _ in range(1000):  # and never reads
    writer.write_table(table)
"""


@pytest.mark.parametrize("how", ["metadata", "no-reads"])
def test_a_client_that_sends_no_data_or_reads_nothing_loses_its_slot(tmp_path, cli, module2, how):
    # The queue waits longer than it takes the slow client to fill its
    # flow-control windows (a loaded machine included): a slot that is
    # never freed fails the call; one freed after --idle-timeout serves it.
    s = Server(
        cli, functions_file(tmp_path, module2), "--max-concurrent", "1", "--idle-timeout", "1s", "--queue-timeout", "30s"
    )
    slow = subprocess.Popen([sys.executable, "-c", SLOW, s.location, how], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        table = docs(100)
        out = exchange(s.client(), "tokenize", table.to_batches(), table.schema, options(token=None))
        assert out.num_rows > 100
        # Still running, or cut off by the server: not done with its work.
        assert slow.poll() != 0, "the slow client finished its work: it proved nothing"
    finally:
        slow.kill()
        slow.wait()
        code, err = s.stop()
    assert code == 0, err


def test_sigterm_lets_an_exchange_in_flight_finish(tmp_path, cli, module2):
    s = Server(cli, functions_file(tmp_path, module2))
    table = docs(400)
    batches = table.to_batches(max_chunksize=100)
    client = s.client()
    writer, reader = client.do_exchange(fl.FlightDescriptor.for_path("tokenize"), options=options(token=None))
    writer.begin(table.schema)
    writer.write_batch(batches[0])
    first = reader.read_chunk().data
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    for b in batches[1:]:
        writer.write_batch(b)
    writer.done_writing()
    rest = reader.read_all()
    writer.close()
    assert first.num_rows + rest.num_rows == exchange_rows(table)
    assert s.proc.wait(timeout=30) == 0
    assert "stopped" in s.proc.stderr.read()


def exchange_rows(table):
    """Tokens in `table`'s text, as tokenize counts them."""
    return sum(len(re.findall(r"[^\W_]+", t)) for t in table.column("text").to_pylist())

"""Ray and Spark on this machine, on loopback, torn down afterwards: shared
by the engine tests (test_ray.py, test_spark.py) and the benchmark
(wasm-py/bench/bench.py)."""

import contextlib
import os
import shutil
import sys
import tempfile


@contextlib.contextmanager
def ray_cluster(nodes: int = 2, cpus: int = 1, object_store: int = 100 << 20):
    """`nodes` Ray nodes of `cpus` CPUs each (`ray.cluster_utils.Cluster`),
    the driver attached; yields the `ray` module."""
    # Before ray starts any process: nodes and workers inherit them.
    # Without the first, Ray binds to eth0, or hangs when forced to loopback.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    # Ray's Unix socket paths live under the temp dir and have a length
    # limit: pytest's tmp_path is too long, so a short dir under /tmp.
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    # The driver records the cluster's address in `$RAY_TMPDIR/ray/` (else
    # /tmp/ray/), which it does not create: on a machine where Ray never ran
    # `Cluster` fails with FileNotFoundError. Keep it in our folder.
    previous_tmpdir = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp_dir
    os.makedirs(os.path.join(temp_dir, "ray"), exist_ok=True)
    node = {"num_cpus": cpus, "object_store_memory": object_store}
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={**node, "include_dashboard": False, "temp_dir": temp_dir},
        )
        for _ in range(nodes - 1):
            cluster.add_node(**node)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield ray
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
        if previous_tmpdir is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = previous_tmpdir


@contextlib.contextmanager
def spark_session(memory: str = "1g"):
    """A local Spark session with 2 worker threads, on loopback, no UI."""
    # The Python workers must be this interpreter (the venv with pyarrow and
    # wasm_study), and Spark must not bind to eth0.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("wasm_study")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", memory)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()

"""Ray Serve benchmark: the numpy ~2 ms model through Ray Serve (1 and 2 replicas) vs `pkg serve`.

    .venv/bin/python bench/ray.py [--seconds 10] [--quick]

Everything Ray runs in a private network namespace with only loopback (tests/ray/ray_netns.py):
this script calibrates the matmul loops, then runs itself again (`--inner`) under `unshare`,
where it starts `pkg serve`'s server, then a local Ray cluster (2 CPUs, no dashboard, usage
stats off) with the same package deployed by `packager.integrations.ray.deployment`. wrk
(one thread) POSTs the same body to each: c=1 for latency (Ray's added latency is the
difference of the medians), then c=16 for requests/s. No target: a report (bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests" / "ray"))
from _common import PACKAGES, machine  # noqa: E402
from _procs import Server, free_port, packager_cmd  # noqa: E402
from _wrk import WrkResult, ensure_wrk, run_wrk  # noqa: E402
from ray_netns import RAY_INIT, require_private_netns, run_in_netns  # noqa: E402

PACKAGE = PACKAGES / "numpy_work"
BODY = b'{"text": "ray bench", "id": 1}'
CONNECTIONS = 16


def calibrate_loops() -> int:
    code = "from matmul_work import calibrate; print(calibrate())"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(PACKAGE)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def measure(url: str, seconds: float) -> tuple[WrkResult, WrkResult]:
    """Warm up, then (latency at c=1, throughput at c=16); any error aborts the run."""
    run_wrk(url, [BODY], CONNECTIONS, 2)
    one = run_wrk(url, [BODY], 1, seconds)
    many = run_wrk(url, [BODY], CONNECTIONS, seconds)
    for result in (one, many):
        if result.errors:
            raise RuntimeError(f"{url}: {result.errors} errors in a wrk run")
    return one, many


def measure_pkg_serve(seconds: float) -> tuple[WrkResult, WrkResult]:
    server = Server("pkg-serve", "numpy-work", [], free_port())
    server.cmd = packager_cmd(PACKAGE, server.port)
    server.start()
    try:
        server.wait_ready()
        return measure(server.predict_url, seconds)
    finally:
        server.stop()


def measure_ray(seconds: float, replicas: tuple[int, ...]) -> dict[int, tuple[WrkResult, WrkResult]]:
    # bench/ is sys.path[0] and holds this ray.py: drop it, or `import ray` imports this file
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
    import ray
    from ray import serve

    from packager.integrations.ray import deployment

    ray.init(**RAY_INIT)
    serve.start(http_options={"host": "127.0.0.1", "port": 8000})
    url = "http://127.0.0.1:8000/v1/models/numpy-work:predict"
    got = {}
    try:
        for count in replicas:
            serve.run(deployment(PACKAGE, num_replicas=count), name="numpy", route_prefix="/")
            got[count] = measure(url, seconds)
            serve.delete("numpy")
            time.sleep(1)
    finally:
        serve.shutdown()
        ray.shutdown()
    return got


def row(label: str, one: WrkResult, many: WrkResult, base: WrkResult | None) -> str:
    added = f"{one.p50_ms - base.p50_ms:+.2f}" if base is not None else "-"
    return (
        f"| {label} | {many.rps:.0f} | {many.p50_ms:.1f} | {many.p99_ms:.1f} | {one.p50_ms:.2f} | {added} |"
    )


def inner(args: argparse.Namespace) -> None:
    require_private_netns()
    ensure_wrk()
    os.environ.update(
        BENCH_NUMPY_LOOPS=str(args.loops),
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(PACKAGE), str(ROOT)]),
    )
    base_one, base_many = measure_pkg_serve(args.seconds)
    ray_runs = measure_ray(args.seconds, (1, 2))
    print(f"{machine()}; numpy {args.loops} x 128² matmul ≈ 2 ms/request, predict_concurrency 2")
    print(f"wrk -t1: c={CONNECTIONS} for req/s and p50/p99, c=1 for the latency; {args.seconds:g} s each\n")
    print(f"| server | req/s c={CONNECTIONS} | p50 ms | p99 ms | p50 ms c=1 | added ms c=1 |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row("pkg serve", base_one, base_many, None))
    for count, (one, many) in ray_runs.items():
        print(row(f"Ray Serve, {count} replica{'s' if count > 1 else ''}", one, many, base_one))
    for count, (_, many) in ray_runs.items():
        print(f"\nRay Serve {count} replica(s) / pkg serve, req/s: {many.rps / base_many.rps:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--quick", action="store_true", help="3 s runs")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loops", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args)
        return
    seconds = 3.0 if args.quick else args.seconds
    loops = calibrate_loops()
    argv = [sys.executable, __file__, "--inner", "--loops", str(loops), "--seconds", str(seconds)]
    result = run_in_netns(argv, timeout=900, cwd=str(ROOT))
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-5000:])
        sys.exit(result.returncode)


if __name__ == "__main__":
    main()

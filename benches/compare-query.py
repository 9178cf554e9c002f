#!/usr/bin/env python3
"""Side-by-side PromQL benchmark: fenghuo against a real Prometheus.

    benches/compare-query.py [--hosts 100] [--pods 10] [--rounds 240] [--repeats 15]

Starts Prometheus (Debian package `prometheus`, with its remote-write
receiver) and fenghuo on temporary data directories, sends both the same
fenghuo-load payload (node_exporter- and cAdvisor-like series, fixed seed,
one sender so Prometheus sees every series in order), then runs a set of
Grafana-dashboard queries against each through the HTTP API. For every query
it reports the median latency on each server, their ratio, and whether the
two answers agree (same series, values equal to 1e-9 relative). It also
reports each server's CPU-seconds for the whole query phase.

Build first: cargo build --release --bin fenghuo --bin fenghuo-load
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

QUERIES = [
    'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))',
    "sum by (namespace) (rate(container_cpu_usage_seconds_total[5m]))",
    "topk(10, sum by (pod) (container_memory_working_set_bytes))",
    "1 - node_filesystem_avail_bytes / node_filesystem_size_bytes",
    "avg_over_time(node_load1[10m])",
    "sum by (namespace) (rate(container_network_receive_bytes_total[5m]))",
    "count by (job) (node_uname_info)",
    "quantile(0.9, rate(node_network_receive_bytes_total[5m]))",
]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def wait_ready(url, proc, name):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{name} did not become ready")


def query_range(base, q, start, end, step):
    params = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step})
    req = urllib.request.Request(
        f"{base}/api/v1/query_range",
        data=params.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
    return time.perf_counter() - t, json.loads(body)


def canonical(answer):
    """Series keyed by their sorted labels, values as floats."""
    out = {}
    for s in answer["data"]["result"]:
        key = tuple(sorted(s["metric"].items()))
        out[key] = [(float(t), float(v)) for t, v in s["values"]]
    return out


def difference(a, b):
    """None when the answers agree, else the first difference found."""
    ca, cb = canonical(a), canonical(b)
    if ca.keys() != cb.keys():
        return f"series differ: {sorted(ca.keys() ^ cb.keys())[:3]}"
    for k, va in ca.items():
        vb = cb[k]
        if len(va) != len(vb):
            return f"{dict(k)}: {len(va)} vs {len(vb)} points: {va[:3]} vs {vb[:3]}"
        for (ta, xa), (tb, xb) in zip(va, vb):
            if ta != tb:
                return f"{dict(k)}: timestamps {ta} vs {tb}"
            if math.isnan(xa) and math.isnan(xb):
                continue
            if not math.isclose(xa, xb, rel_tol=1e-9, abs_tol=1e-12):
                return f"{dict(k)} at {ta}: {xa!r} vs {xb!r}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--pods", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    target = os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/fenghuo-target")), "release"
    )
    work = tempfile.mkdtemp()
    procs = []
    try:
        prom_cfg = os.path.join(work, "prometheus.yml")
        with open(prom_cfg, "w") as f:
            f.write("global:\n  scrape_interval: 15s\n")
        prom = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={prom_cfg}",
                f"--storage.tsdb.path={work}/prom",
                "--storage.tsdb.retention.time=100y",
                "--web.listen-address=127.0.0.1:29090",
                "--web.enable-remote-write-receiver",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(work, "prom.log"), "w"),
        )
        procs.append(prom)
        fh = subprocess.Popen(
            [
                f"{target}/fenghuo",
                "serve",
                "--listen",
                "127.0.0.1:29800",
                "--data-dir",
                f"{work}/fh",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(work, "fh.log"), "w"),
        )
        procs.append(fh)
        servers = [
            ("prometheus", "http://127.0.0.1:29090", prom),
            ("fenghuo", "http://127.0.0.1:29800", fh),
        ]
        for name, base, proc in servers:
            wait_ready(f"{base}/-/ready", proc, name)
        # One start time for both loads, so both hold the same samples; the
        # last round lands a minute before now.
        first = (math.floor(time.time()) - args.rounds * 15 - 60) // 15 * 15 * 1000
        for name, base, proc in servers:
            subprocess.run(
                [
                    f"{target}/fenghuo-load",
                    "--url",
                    f"{base}/api/v1/write",
                    "--hosts",
                    str(args.hosts),
                    "--pods-per-host",
                    str(args.pods),
                    "--rounds",
                    str(args.rounds),
                    "--concurrency",
                    "1",
                    "--start-ms",
                    str(first),
                    "--name",
                    name,
                ],
                check=True,
            )
        # Evaluation times half a second off the whole seconds never meet a
        # sample's timestamp: Prometheus 3 made range selectors left-open,
        # Debian's Prometheus 2.42 still includes a sample exactly at the
        # range start, and fenghuo follows Prometheus 3.
        end = math.floor(time.time()) + 0.5
        # The range starts once every 5m/10m window holds data: at a
        # series' first samples Prometheus before 2.51 (Debian ships 2.42)
        # extrapolates rate() differently from current Prometheus, which
        # fenghuo follows (upstream commit 7f912db, "Fix limiting of
        # extrapolation to negative values").
        start = first // 1000 + 660.5
        step = 60
        print(
            f"\n{args.hosts} hosts x {args.pods} pods, {args.rounds} rounds; "
            f"query_range over {end - start:.0f}s, step {step}s, median of {args.repeats}\n"
        )
        print(f"{'query':<72} {'prometheus':>11} {'fenghuo':>11} {'ratio':>6}  same")
        cpu = {name: 0.0 for name, _, _ in servers}
        differences = []
        for q in QUERIES:
            medians, answers = {}, {}
            for name, base, proc in servers:
                query_range(base, q, start, end, step)  # warm caches once
                before = cpu_seconds(proc.pid)
                times = []
                for _ in range(args.repeats):
                    dt, answer = query_range(base, q, start, end, step)
                    if answer.get("status") != "success":
                        sys.exit(f"{name}: {q}: {answer}")
                    times.append(dt)
                cpu[name] += cpu_seconds(proc.pid) - before
                medians[name] = statistics.median(times)
                answers[name] = answer
            diff = difference(answers["prometheus"], answers["fenghuo"])
            if diff:
                differences.append(f"{q}: {diff}")
            print(
                f"{q[:72]:<72} {medians['prometheus'] * 1000:>9.1f}ms {medians['fenghuo'] * 1000:>9.1f}ms "
                f"{medians['fenghuo'] / medians['prometheus']:>6.2f}  {'no' if diff else 'yes'}"
            )
        for d in differences:
            print(f"differs: {d}")
        print(
            f"\nserver CPU-seconds for all queries: prometheus {cpu['prometheus']:.2f}, "
            f"fenghuo {cpu['fenghuo']:.2f} (ratio {cpu['fenghuo'] / max(cpu['prometheus'], 1e-9):.2f})"
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

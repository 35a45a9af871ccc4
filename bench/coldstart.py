#!/usr/bin/env python3
"""Cold start of `megalis serve` to ready: start the process on an empty data directory and
database, poll GET /readyz over HTTPS every millisecond, report the time to the first 200.

usage: coldstart.py MEGALIS_BIN (sqlite|postgres) RUNS
"""
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import http.client


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_postgres():
    name = "megalis_bench_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
                    "-c", f"CREATE DATABASE {name}"], check=True)
    return name, f"postgres://postgres@127.0.0.1:5432/{name}"


def drop_postgres(name):
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
                    "-c", f"DROP DATABASE IF EXISTS {name}"], check=True)


def one_run(binary, backend):
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        port = free_port()
        args = [binary, "--data-dir", data, "--log-level", "warn"]
        dbname = None
        if backend == "postgres":
            dbname, url = fresh_postgres()
            args += ["--database-url", url]
        args += ["serve", "--listen", f"127.0.0.1:{port}"]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
                    conn.request("GET", "/readyz")
                    if conn.getresponse().status == 200:
                        return (time.perf_counter() - started) * 1000
                except OSError:
                    pass
                if proc.poll() is not None:
                    sys.exit(f"megalis exited with {proc.returncode}")
                if time.perf_counter() - started > 60:
                    sys.exit("not ready after 60 s")
                time.sleep(0.001)
        finally:
            proc.terminate()
            proc.wait()
            if dbname:
                drop_postgres(dbname)


def main():
    binary, backend, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    times = [one_run(binary, backend) for _ in range(runs)]
    print(f"cold start to ready, {backend}, {runs} runs: median {statistics.median(times):.0f} ms, "
          f"min {min(times):.0f} ms, max {max(times):.0f} ms")


if __name__ == "__main__":
    main()

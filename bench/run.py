#!/usr/bin/env python3
"""Runs every benchmark in turn; each prints its own table: the C ones of
build/bench (bench_*), then the Python ones of bench/ (*.py but this file),
which run the release binary as processes (pg_scale: SQLite against
PostgreSQL with one and two workers).

Usage: python3 bench/run.py [--build DIR] [NAME...]   (NAME: store_publish, pg_scale, ...)
Each benchmark runs with its defaults and at most --timeout seconds.
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    bench_dir = os.path.join(args.build, "bench")
    if not os.path.isdir(bench_dir):
        print(f"bench/run.py: no '{bench_dir}': build first (make)", file=sys.stderr)
        return 2
    found = sorted(f for f in os.listdir(bench_dir)
                   if f.startswith("bench_") and os.access(os.path.join(bench_dir, f), os.X_OK)
                   and os.path.isfile(os.path.join(bench_dir, f)))
    if args.names:
        found = [f for f in found if f[len("bench_"):] in args.names]
    here = os.path.dirname(os.path.abspath(__file__))
    scripts = sorted(f for f in os.listdir(here) if f.endswith(".py") and f != "run.py")
    if args.names:
        scripts = [f for f in scripts if f[:-3] in args.names]
    runs = [(name, [os.path.join(bench_dir, name)]) for name in found]
    runs += [(name, [sys.executable, os.path.join(here, name), "--build", args.build])
             for name in scripts]
    status = 0
    for name, argv in runs:
        print(f"== {name}", flush=True)
        try:
            p = subprocess.run(argv, timeout=args.timeout)
            if p.returncode != 0:
                print(f"bench/run.py: {name} exited {p.returncode}", file=sys.stderr)
                status = 1
        except subprocess.TimeoutExpired:
            print(f"bench/run.py: {name} took over {args.timeout}s", file=sys.stderr)
            status = 1
        print(flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

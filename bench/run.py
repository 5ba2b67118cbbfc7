#!/usr/bin/env python3
"""Runs every benchmark of build/bench (bench_*) in turn; each prints its own table.

Usage: python3 bench/run.py [--build DIR] [NAME...]   (NAME: store_publish, ...)
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
    status = 0
    for name in found:
        print(f"== {name}", flush=True)
        try:
            p = subprocess.run([os.path.join(bench_dir, name)], timeout=args.timeout)
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

#!/usr/bin/env python3
"""Runs every fluxhook test and ends with one line: `N passed, N failed`.

Suites:
  unit     the cmocka programs of build-asan (AddressSanitizer + UBSan)
  torture  the store (SQLite), events and sign programs again, each test with
           its n-th allocation failing, --torture runs per test (default 20,
           a quarter of it for the store programs; 0: every n); see
           tests/unit/torture.h
  e2e      tests/e2e/test_*.py, each file in its own process, against the
           ASan build of the real binary
  multihost tests/multihost/test_*.py, each file in its own process, one at a
           time: several fluxhook processes in network namespaces sharing
           one PostgreSQL, under faults (needs root and iproute2); the fault
           table goes to tests/artifacts/multihost.txt
  browser  tests/browser/*.test.mjs in headless Chromium (playwright-core)
  fuzz     each libFuzzer target of build-fuzz replays its seed corpus
           (fuzz/corpus/NAME/), then fuzzes for --fuzz-seconds (default 30)
           or --fuzz-runs inputs, --jobs targets at a time; runs and exec/s
           per target go to tests/artifacts/fuzz.txt

Counts are of test cases: each cmocka test, each unittest method, each
browser test, each fuzz target.

Stores (--store sqlite|postgres|both, default both): the store unit test
(`store`) runs once per backend, as unit/store[sqlite] and
unit/store[postgres], and so do the e2e files that exercise the server's
store (test_api_*, test_deliver_*, test_serve; the postgres run is named
e2e/test_x[postgres]); test_pg_* (PostgreSQL faults, on clusters of their
own) runs with postgres only; the other e2e files run on sqlite only, and those
that need PostgreSQL themselves (test_db_copy) get the cluster whatever --store
says. For postgres,
one throwaway cluster (tests/pgcluster.py) serves the whole run, unless
FLUXHOOK_TEST_PG_URL already names a server; each test makes its own
databases in it.
"""
import argparse
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")
STORE_UNIT = "store"  # the meson test that runs once per backend
STORE_E2E = r"test_(api|deliver|ops)_.*\.py|test_serve\.py|test_(oauth.*|scopes|rate_limit|portal.*)\.py"  # e2e files run once per backend
PG_E2E = r"test_db_copy\.py"  # e2e files that need PostgreSQL whatever --store says
PG_ONLY_E2E = r"test_pg_.*\.py"  # e2e files about PostgreSQL itself: with postgres only
STORE_TORTURE_DIVISOR = 4  # the store programs get --torture / 4 runs per test (0 stays all)


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def add(self, name, passed, failed, output):
        self.passed += passed
        self.failed += failed
        mark = "ok  " if failed == 0 else "FAIL"
        print(f"{mark} {name}: {passed} passed, {failed} failed", flush=True)
        if failed:
            self.failures.append(name)
            log = os.path.join(ARTIFACTS, "logs", re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".log")
            os.makedirs(os.path.dirname(log), exist_ok=True)
            with open(log, "w") as f:
                f.write(output)
            tail = output[-6000:]
            print("    " + tail.replace("\n", "\n    "), flush=True)


def run(cmd, timeout, env=None, cwd=ROOT):
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, text=True,
                           errors="replace")
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return -1, out + f"\n[timed out after {timeout}s]\n"


def unit_tests(build, suite="unit"):
    intro = subprocess.run(["meson", "introspect", "--tests", build], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True, check=True)
    return [(t["name"], t["cmd"], t.get("env", {})) for t in json.loads(intro.stdout)
            if any(s.split(":")[-1] == suite for s in t.get("suite", []))]


def torture_jobs(build, cap):
    """The unit programs of suite 'torture' in allocation-failure mode
    (tests/unit/torture.h), at most cap runs per test (0: every allocation);
    the store on SQLite (libpq's own allocations cannot be made to fail)."""
    tmp = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"  # runs are many; no disk waits
    jobs = []
    for name, cmd, extra in unit_tests(build, "torture"):
        n = cap
        if name.startswith("store") and cap != 0:
            n = max(1, cap // STORE_TORTURE_DIVISOR)  # each store run opens a database
        jobs.append((f"torture/{name}", cmd,
                     dict(extra, FLUXHOOK_TORTURE=str(n), FLUXHOOK_TEST_STORE="sqlite", TMPDIR=tmp),
                     ROOT))
    return jobs


def unit_jobs(build, stores):
    """(tally name, argv, extra environment, cwd) of each unit run: the store
    test once per backend, every other test once, and with postgres the
    self-test of the PostgreSQL fixture (a Python unittest, run from tests/)."""
    jobs = []
    for name, cmd, extra in unit_tests(build):
        if name != STORE_UNIT:
            jobs.append((name, cmd, extra, ROOT))
            continue
        for store in stores:
            jobs.append((f"{name}[{store}]", cmd, dict(extra, FLUXHOOK_TEST_STORE=store), ROOT))
    if "postgres" in stores:
        jobs.append(("pgcluster", [sys.executable, "-m", "unittest", "-v", "test_pgcluster"],
                     {"PYTHONDONTWRITEBYTECODE": "1"}, os.path.join(ROOT, "tests")))
    return jobs


def unittest_counts(code, out):
    """(passed, failed) from the output of `python3 -m unittest -v`."""
    m = re.search(r"^Ran (\d+) tests?", out, re.M)
    ran = int(m.group(1)) if m else 0
    m = re.search(r"^FAILED \((.*)\)", out, re.M)
    failed = 0
    skipped = 0
    if m:
        for k, v in re.findall(r"(\w+)=(\d+)", m.group(1)):
            if k in ("failures", "errors"):
                failed += int(v)
            if k == "skipped":
                skipped += int(v)
    m = re.search(r"^OK \(.*skipped=(\d+)", out, re.M)
    if m:
        skipped = int(m.group(1))
    if code != 0 and failed == 0:
        failed = 1
    if ran == 0 and failed == 0:
        failed = 1  # a file that runs nothing is broken
    return max(0, ran - failed - skipped), failed


def run_unit(tally, build, jobs, stores, torture=None):
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="STDOUT",
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")

    def one(t):
        name, cmd, extra, cwd = t
        code, out = run(cmd, 600, env=dict(env, **extra), cwd=cwd)
        return name, cwd, code, out

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        todo = unit_jobs(build, stores) if torture is None or torture[0] else []
        if torture is not None:
            todo += torture_jobs(build, torture[1])
        for name, cwd, code, out in pool.map(one, todo):
            if cwd != ROOT:
                tally.add("unit/" + name, *unittest_counts(code, out), out)
                continue
            passed = sum(int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", out))
            failed = sum(int(n) for n in re.findall(r"\[  FAILED  \] (\d+) test", out))
            if code != 0 and failed == 0:
                failed = 1  # crashed, sanitizer report, or timeout
            if name.startswith("torture/"):
                allocs = sum(int(n) for n in re.findall(r"\] \S+: (\d+) allocations", out))
                runs = sum(int(n) for n in re.findall(r" (\d+) runs with one failing", out))
                tally.add(f"{name} ({allocs} allocations, {runs} runs with one failing)",
                          passed, failed, out)
                continue
            tally.add("unit/" + name, passed, failed, out)


def e2e_jobs(files, stores):
    """(tally name, file, store) of each e2e run: the store-bound files once
    per backend, the PostgreSQL ones with postgres only, the others on sqlite
    only."""
    jobs = []
    for f in files:
        for store in stores:
            if re.fullmatch(PG_ONLY_E2E, f):
                if store == "postgres":
                    jobs.append((f"e2e/{f[:-3]}[{store}]", f, store))
            elif store == "sqlite":
                jobs.append(("e2e/" + f[:-3], f, store))
            elif re.fullmatch(STORE_E2E, f):
                jobs.append((f"e2e/{f[:-3]}[{store}]", f, store))
    return jobs


def run_e2e(tally, jobs, files, stores):
    d = os.path.join(ROOT, "tests", "e2e")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")

    def one(job):
        name, f, store = job
        code, out = run([sys.executable, "-m", "unittest", "-v", f[:-3]], 1200,
                        env=dict(env, FLUXHOOK_TEST_STORE=store), cwd=d)
        return name, code, out

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for name, code, out in pool.map(one, e2e_jobs(files, stores)):
            tally.add(name, *unittest_counts(code, out), out)


def start_postgres(tally):
    """Starts the run's PostgreSQL cluster and exports FLUXHOOK_TEST_PG_URL;
    returns False (after tallying a failure) when it cannot."""
    if os.environ.get("FLUXHOOK_TEST_PG_URL"):
        print("postgres: using FLUXHOOK_TEST_PG_URL=" + os.environ["FLUXHOOK_TEST_PG_URL"],
              flush=True)
        return True
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import pgcluster
    t0 = time.monotonic()
    try:
        pg = pgcluster.PgCluster().start()
    except (pgcluster.PgError, OSError) as e:
        tally.add("pgcluster", 0, 1, f"cannot start PostgreSQL: {e}\n"
                  "(scripts/setup.sh --test installs it)\n")
        return False
    os.environ["FLUXHOOK_TEST_PG_URL"] = pg.url("postgres")
    print(f"postgres: {pg.url()} in {pg.dir} (started in {time.monotonic() - t0:.1f}s)",
          flush=True)
    return True


def run_multihost(tally):
    """Each tests/multihost/test_*.py in its own process, one after another:
    they time faults and measure recovery, so they do not share the CPU with
    each other."""
    d = os.path.join(ROOT, "tests", "multihost")
    if not os.path.isdir(d):
        return
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    for f in sorted(f for f in os.listdir(d) if re.fullmatch(r"test_.*\.py", f)):
        code, out = run([sys.executable, "-m", "unittest", "-v", f[:-3]], 600, env=env, cwd=d)
        tally.add("multihost/" + f[:-3], *unittest_counts(code, out), out)


def run_browser(tally):
    d = os.path.join(ROOT, "tests", "browser")
    if not os.path.isdir(d):
        return
    files = sorted(f for f in os.listdir(d) if f.endswith(".test.mjs"))
    for f in files:
        code, out = run(["node", f], 900, cwd=d)
        m = re.findall(r"^browser: (\d+) passed, (\d+) failed", out, re.M)
        passed, failed = (int(m[-1][0]), int(m[-1][1])) if m else (0, 1)
        if code != 0 and failed == 0:
            failed = 1
        tally.add("browser/" + f, passed, failed, out)


def fuzz_one(build, t, seconds, runs):
    """Replays t's seed corpus input by input, then fuzzes it for seconds (or runs inputs)."""
    corpus = os.path.join(ROOT, "fuzz", "corpus", t[len("fuzz_"):])
    work = os.path.join(ARTIFACTS, "fuzz", t)
    os.makedirs(work, exist_ok=True)
    exe = os.path.join(build, t)
    common = ["-max_len=65536", "-rss_limit_mb=2048", "-timeout=10", f"-artifact_prefix={work}/"]
    seeds = sorted(os.path.join(corpus, f) for f in os.listdir(corpus)) if os.path.isdir(corpus) else []
    if not seeds:
        return 1, f"{corpus}: no seed corpus\n", ""
    code, out = run([exe] + common + seeds, 120)
    if code != 0 or (runs is None and seconds <= 0):
        return code, out, f"{len(seeds)} seeds replayed"
    limit = [f"-runs={runs}"] if runs is not None else [f"-max_total_time={seconds}"]
    code, fout = run([exe] + common + limit + [work, corpus],
                     None if runs is not None else seconds + 120)
    out += fout
    m = re.findall(r"^Done (\d+) runs in (\d+) second", fout, re.M)
    rate = re.findall(r"exec/s: (\d+)", fout)
    stats = f"{len(seeds)} seeds replayed"
    if m:
        stats += f", {int(m[-1][0]):,} runs in {m[-1][1]} s"
    if rate:
        stats += f", {int(rate[-1]):,} exec/s"
    return code, out, stats


def run_fuzz(tally, seconds, runs, jobs):
    """
    Each target of build-fuzz replays its seed corpus (fuzz/corpus/NAME/, every
    input once), then fuzzes for `seconds` (or `runs` inputs, the nightly
    budget), jobs targets at a time. Counts land in tests/artifacts/fuzz.txt.
    """
    build = os.path.join(ROOT, "build-fuzz", "fuzz")
    if not os.path.isdir(build):
        tally.add("fuzz", 0, 1, "build-fuzz/fuzz is missing: run `make test` or `make fuzz`\n")
        return
    targets = sorted(f for f in os.listdir(build) if f.startswith("fuzz_") and
                     os.access(os.path.join(build, f), os.X_OK) and "." not in f)
    lines = []
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        futs = {t: pool.submit(fuzz_one, build, t, seconds, runs) for t in targets}
        for t in targets:
            code, out, stats = futs[t].result()
            tally.add("fuzz/" + t, 1 if code == 0 else 0, 0 if code == 0 else 1, out)
            print(f"     {stats}", flush=True)
            lines.append(f"{t}: {stats}{'' if code == 0 else ' (FAILED)'}")
    with open(os.path.join(ARTIFACTS, "fuzz.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["unit", "torture", "e2e", "multihost", "browser", "fuzz"])
    ap.add_argument("--torture", type=int, default=20,
                    help="allocation-failure runs per test of the store, events and sign unit "
                         "programs (0: one per allocation, the full sweep of make torture)")
    ap.add_argument("--e2e", default=r"test_.*\.py", help="regex of e2e files to run")
    ap.add_argument("--fuzz-seconds", type=int, default=30,
                    help="seconds of fuzzing per target after its seeds (0: replay the seeds only)")
    ap.add_argument("--fuzz-runs", type=int,
                    help="inputs per target instead of seconds (the nightly budget: 10000000)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both",
                    help="the store backends of the store unit test and the e2e suite")
    a = ap.parse_args()
    # SIGTERM ends the run like Ctrl-C does, so the PostgreSQL cluster is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stores = ["sqlite", "postgres"] if a.store == "both" else [a.store]
    os.makedirs(ARTIFACTS, exist_ok=True)
    os.environ.setdefault("FLUXHOOK_BIN", os.path.join(ROOT, "build-asan", "fluxhook"))
    os.environ.setdefault("FLUXHOOK_RELEASE_BIN", os.path.join(ROOT, "build", "fluxhook"))
    tally = Tally()
    start = time.monotonic()
    e2e_files = sorted(f for f in os.listdir(os.path.join(ROOT, "tests", "e2e"))
                       if re.fullmatch(a.e2e, f))
    needs_pg = a.only in (None, "unit") or (
        a.only == "e2e" and any(re.fullmatch(STORE_E2E, f) for f in e2e_files))
    pg_files = (a.only in (None, "e2e") and "sqlite" in stores  # they run with the sqlite pass
                and any(re.fullmatch(PG_E2E, f) for f in e2e_files))
    if ("postgres" in stores and needs_pg) or pg_files:
        # Without it the PG_E2E files fail, saying so.
        if not start_postgres(tally) and "postgres" in stores:
            stores.remove("postgres")
    if a.only in (None, "unit", "torture"):
        run_unit(tally, os.path.join(ROOT, "build-asan"), a.jobs, stores,
                 None if a.only == "unit" else (a.only is None, a.torture))
    if a.only in (None, "e2e"):
        run_e2e(tally, a.jobs, e2e_files, stores)
    if a.only in (None, "multihost"):
        run_multihost(tally)
    if a.only in (None, "browser"):
        run_browser(tally)
    if a.only in (None, "fuzz"):
        run_fuzz(tally, a.fuzz_seconds, a.fuzz_runs, a.jobs)
    print(f"\ntook {time.monotonic() - start:.0f}s", flush=True)
    if tally.failures:
        print("failed: " + ", ".join(tally.failures))
    print(f"{tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed or tally.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

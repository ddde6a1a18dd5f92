"""`python -m drills.soak --minutes 30`: steady webhook traffic through the real engine while the
web and worker resident memory is sampled every 10 s; memory must stay flat.

Opt-in (not part of `make test` or `make drills`). Verdict: after a warm-up, the average of the
last third of the samples is within `--tolerance` of the first third's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench import infra
from bench.payloads import APP_SECRET
from drills.check import pending_inbox
from drills.driver import Driver
from drills.run import exit_on_sigterm, positive_int
from drills.stack import Stack
from drills.workload import build_workload

SAMPLE_EVERY_S = 10.0
WARMUP_S = 60.0


@dataclass(frozen=True)
class Sample:
    at_s: float
    web_mib: float
    worker_mib: float
    posted: int
    pending: int


def rss_mib(pid: int) -> float:
    """Resident memory of one process, from /proc/<pid>/status (VmRSS, kB); 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def tree_rss_mib(pid: int) -> float:
    """A process and all its descendants (the dramatiq supervisor and its worker processes)."""
    try:
        pids = [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return 0.0
    return sum(rss_mib(p) for p in pids)


def verdict(samples: list[Sample], tolerance: float, warmup_s: float = WARMUP_S) -> list[str]:
    """One line per process: flat or growing, with the first- and last-third averages."""
    steady = [s for s in samples if s.at_s >= warmup_s]
    if len(steady) < 3:
        return ["too few samples after the warm-up to judge (run longer)"]
    third = len(steady) // 3
    lines = []
    for name in ("web_mib", "worker_mib"):
        first = statistics.fmean(getattr(s, name) for s in steady[:third])
        last = statistics.fmean(getattr(s, name) for s in steady[-third:])
        growth = (last - first) / first if first else 0.0
        word = "flat" if growth <= tolerance else "GROWING"
        lines.append(
            f"{name[:-4]}: {word} ({first:.1f} MiB -> {last:.1f} MiB, {100 * growth:+.1f}%)"
        )
    return lines


def soak(minutes: float, rate_per_s: float, tolerance: float) -> bool:
    stack = Stack("redis", label="soak")
    samples: list[Sample] = []
    try:
        services = stack.start()
        channel_id = infra.seed_channel(services)
        stack.start_engine()
        events = int(minutes * 60 * rate_per_s)
        workload = build_workload(events, contacts=2_000, run_tag=stack.prefix)
        url = f"http://127.0.0.1:{stack.web_port}/webhooks/whatsapp/{channel_id}"
        driver = Driver(url, workload.posts, secret=APP_SECRET, rate_per_s=rate_per_s).start()
        started = time.monotonic()
        print(f"{'t (s)':>7} {'web MiB':>9} {'worker MiB':>11} {'posted':>8} {'pending':>8}")
        while not driver.done.is_set():
            time.sleep(SAMPLE_EVERY_S)
            assert stack.web is not None and stack.worker is not None
            sample = Sample(
                at_s=time.monotonic() - started,
                web_mib=tree_rss_mib(stack.web.popen.pid),
                worker_mib=tree_rss_mib(stack.worker.popen.pid),
                posted=driver.progress,
                pending=pending_inbox(services),
            )
            samples.append(sample)
            print(
                f"{sample.at_s:7.0f} {sample.web_mib:9.1f} {sample.worker_mib:11.1f} "
                f"{sample.posted:8d} {sample.pending:8d}",
                flush=True,
            )
    finally:
        stack.close()
    lines = verdict(samples, tolerance)
    print("\n".join(lines))
    return all("GROWING" not in line and "too few" not in line for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills.soak", description=__doc__)
    parser.add_argument("--minutes", type=positive_int, default=30)
    parser.add_argument("--rate", type=positive_int, default=20, help="webhooks per second")
    parser.add_argument(
        "--tolerance", type=float, default=0.10, help="allowed growth, as a fraction"
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()
    return 0 if soak(args.minutes, args.rate, args.tolerance) else 1


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench.sandbox_server PORT`: the provider sandbox alone in a process of its own.

Its own process keeps its CPU measurable apart from the worker's and off the orchestrator's
GIL. It serves until SIGTERM, like `flowdesk sandbox`.
"""

from __future__ import annotations

import sys

from adapters.sandbox import run_sandbox


def main(argv: list[str]) -> None:
    if len(argv) != 1 or not argv[0].isdigit():
        raise SystemExit("usage: python -m bench.sandbox_server PORT")
    run_sandbox(int(argv[0]), 0)  # SMTP on any free port: the bench sends no mail


if __name__ == "__main__":
    main(sys.argv[1:])

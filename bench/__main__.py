"""``python -m bench`` (``make bench``): every benchmark in one run, one table of ratios.

    python -m bench                 # all of it, a few minutes on 2 cores
    python -m bench --profile       # also print a pyinstrument profile of the large query
    python -m bench --only calls    # one section: calls, fanout, overhead, rps, mutations,
                                    # subscribers, floor
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from bench import floor, ws_subscribers
from bench.gateway import LIST_Q, SMALL_Q, Bench, Failed, all_specs, gateway_configs
from bench.procs import Gateways, Sims
from bench.report import Row, table

SECTIONS = ("calls", "fanout", "overhead", "rps", "mutations", "subscribers", "floor")


def guarded(section: str, run: Callable[[], None], rows: list[Row]) -> None:
    """A section that fails is a row saying so; the other sections still run."""
    try:
        run()
    except Exception as exc:  # any failure is reported, not raised
        reason = str(exc) if isinstance(exc, Failed) else f"{type(exc).__name__}: {exc}"
        rows.append(Row(f"{section}", f"FAILED: {reason}"[:120], "", "NO"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    wanted = set(args.only or SECTIONS)
    logging.disable(logging.WARNING)  # upstream retries and the like are not results
    started = time.perf_counter()
    rows: list[Row] = []
    if wanted - {"subscribers", "floor"} or args.profile:
        rows += gateway_rows(wanted, args.profile)
    if "subscribers" in wanted:
        # Real graphql-transport-ws clients against a gateway process (bench/ws_subscribers.py);
        # `python -m bench.subscribers` still splits the in-process bus's share of the latency.
        print("measuring subscriptions over WebSockets …", file=sys.stderr)
        guarded("subscribers", lambda: rows.extend(ws_subscribers.rows()), rows)
    if "floor" in wanted:
        print("measuring floor (bare Strawberry beside PanelQL) …", file=sys.stderr)
        guarded("floor", lambda: rows.extend(floor.rows()), rows)
    print(table(rows))
    print(f"\n{len(rows)} rows in {time.perf_counter() - started:.0f} s; ratios from one run, "
          "upstream latency injected at the simulators (bench/gateway.py).")


def gateway_rows(wanted: set[str], profile: bool) -> list[Row]:
    print("starting simulators and gateways …", file=sys.stderr)
    sims = Sims(all_specs())
    try:
        gateways = Gateways(gateway_configs(sims))
        try:
            bench = Bench(sims, gateways)
            for section, run in (("calls", bench.calls), ("fanout", bench.fan_out),
                                 ("overhead", bench.overhead), ("rps", bench.throughput),
                                 ("mutations", bench.mutations)):
                if section in wanted:
                    print(f"measuring {section} …", file=sys.stderr)
                    guarded(section, run, bench.rows)
            if profile:
                bench.latency(0)
                for config, text in (("on100", LIST_Q), ("p1", SMALL_Q)):
                    print(f"profile: 20 x {config}", file=sys.stderr)
                    print(gateways.profile(lambda c=config, t=text: [
                        bench.query(c, t) for _ in range(20)]), file=sys.stderr)
            return bench.rows
        finally:
            gateways.stop()
    finally:
        sims.stop()


if __name__ == "__main__":
    main()

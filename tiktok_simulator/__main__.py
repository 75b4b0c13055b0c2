"""Run the simulator as a process: ``python -m tiktok_simulator --port 9000 --seed 42``.

Prints exactly one line ``READY http://127.0.0.1:PORT/open_api/v1.3/`` once listening (so a
parent process can wait for it and learn the port when ``--port 0``), then serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .app import DEFAULT_TOKEN
from .server import SimulatorServer
from .world import World


def _token(spec: str) -> tuple[str, list[str] | str]:
    """``NAME`` (all advertisers) or ``NAME:ID1,ID2`` (only those)."""
    name, _, ids = spec.partition(":")
    return name, ids.split(",") if ids else "*"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tiktok_simulator", description=__doc__)
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    add("--seed", type=int, default=42)
    add("--advertisers", type=int, default=3)
    add("--campaigns", type=int, default=2, help="campaigns per advertiser")
    add("--adgroups", type=int, default=2, help="ad groups per campaign")
    add("--ads", type=int, default=3, help="ads per ad group")
    add(
        "--smart-plus-campaigns",
        type=int,
        default=0,
        help="Upgraded Smart+ campaigns per advertiser (advertisers at even positions)",
    )
    add("--creatives", type=int, default=3, help="creatives per Upgraded Smart+ ad")
    add("--start", default="2025-01-01", help="first day with delivery")
    add("--end", default="2026-12-31", help="last day with delivery")
    add("--delivery-probability", type=float, default=0.7)
    add("--deleted-fraction", type=float, default=0.15)
    add("--latency", type=float, default=0.0, help="seconds added to every report call")
    add("--latency-per-row", type=float, default=0.0, help="extra seconds per row returned")
    add("--qps", type=int, default=10)
    add("--qpm", type=int, default=600)
    add("--no-rate-limit", action="store_true")
    add("--advertiser-qps", type=int, default=None, help="per-advertiser limit (code 40133)")
    add("--throttle-threshold", type=int, default=20_000, help="ad cap of sync reports")
    add("--app-id", default="1234567890")
    add("--app-secret", default="sim-app-secret", help="secret /oauth2/advertiser/get/ wants")
    add("--as-of", default=None, help="the simulator's today for changing objects (YYYY-MM-DD)")
    add("--sandbox", action="store_true", help="refuse discovery and account info as sandbox")
    add(
        "--token",
        action="append",
        help=f"NAME or NAME:ADV1,ADV2 (repeatable; default {DEFAULT_TOKEN} for all advertisers)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    world = World(
        seed=args.seed,
        advertisers=args.advertisers,
        campaigns_per_advertiser=args.campaigns,
        adgroups_per_campaign=args.adgroups,
        ads_per_adgroup=args.ads,
        start=args.start,
        end=args.end,
        delivery_probability=args.delivery_probability,
        deleted_fraction=args.deleted_fraction,
        smart_plus_campaigns_per_advertiser=args.smart_plus_campaigns,
        creatives_per_smart_plus_ad=args.creatives,
    )
    tokens = dict(_token(spec) for spec in args.token) if args.token else None
    server = SimulatorServer(
        world,
        tokens,
        host=args.host,
        port=args.port,
        qps=args.qps,
        qpm=args.qpm,
        latency=args.latency,
        latency_per_row=args.latency_per_row,
        rate_limit=not args.no_rate_limit,
        advertiser_qps=args.advertiser_qps,
        throttle_threshold=args.throttle_threshold,
        app_id=args.app_id,
        app_secret=args.app_secret,
        as_of=args.as_of,
        sandbox=args.sandbox,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"READY {server.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

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


def _position_or_id(value: str) -> int | str:
    """An advertiser's position in the world (a short number) or its id (19 digits)."""
    return int(value) if len(value) < 6 else value


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
    add(
        "--gmv-max-stores",
        type=int,
        default=0,
        help="GMV Max stores per advertiser (positions not 2 mod 3; plus one unavailable store)",
    )
    add(
        "--gmv-max-campaigns",
        type=int,
        default=1,
        help="active Product and LIVE campaigns per store",
    )
    add("--gmv-max-products", type=int, default=3, help="products per Product GMV Max campaign")
    add("--gmv-max-rooms", type=int, default=2, help="LIVE rooms per LIVE GMV Max campaign")
    add(
        "--gmv-max-revoked",
        default="",
        help="advertiser positions or ids without GMV Max permission (comma-separated)",
    )
    add(
        "--gmv-max-not-in-advertiser-total",
        action="store_true",
        help="BASIC AUCTION_ADVERTISER spend leaves GMV Max cost out",
    )
    add("--gmv-max-qps", type=int, default=8, help="GMV Max report budget per second")
    add("--gmv-max-qpm", type=int, default=240, help="GMV Max report budget per minute")
    add("--gmv-max-daily-quota", type=int, default=20_000, help="GMV Max reports per UTC day")
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


def build_world(args: argparse.Namespace) -> World:
    """The world the command line describes."""
    return World(
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
        gmv_max_stores_per_advertiser=args.gmv_max_stores,
        gmv_max_campaigns_per_store=args.gmv_max_campaigns,
        gmv_max_products_per_campaign=args.gmv_max_products,
        gmv_max_rooms_per_campaign=args.gmv_max_rooms,
        gmv_max_revoked_advertisers=[
            _position_or_id(v) for v in args.gmv_max_revoked.split(",") if v
        ],
        gmv_max_in_advertiser_total=not args.gmv_max_not_in_advertiser_total,
        gmv_max_qps=args.gmv_max_qps,
        gmv_max_qpm=args.gmv_max_qpm,
        gmv_max_daily_quota=args.gmv_max_daily_quota,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    world = build_world(args)
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

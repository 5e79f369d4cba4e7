"""``deepfake-lab demo``: serve the classroom app (:mod:`deepfake_lab.app`) until Ctrl+C.

    deepfake-lab demo                                        # http://127.0.0.1:7860, this computer only
    deepfake-lab demo --host 0.0.0.0 --auth class:secret     # the whole classroom, with a password
    deepfake-lab demo --concurrency 4                        # 4 requests computed at once (default: from the CPU)
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from ..errors import UserError

__all__ = ["add_commands", "parse_auth", "is_loopback", "host_warning"]


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``"user:pass"`` -> ``("user", "pass")``; the password may itself contain ``:``."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise UserError(f"--auth {text!r}: expected USER:PASSWORD, e.g. --auth class:a-long-secret")
    return user, password


def is_loopback(host: str) -> bool:
    """True when ``host`` can only be reached from this computer (127.x.x.x, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def host_warning(host: str, auth: tuple[str, str] | None) -> str | None:
    """The warning printed when the app is reachable from other computers without a password."""
    if is_loopback(host) or auth is not None:
        return None
    return (f"warning: --host {host} lets every computer that can reach this one use the app without a password; "
            "add --auth USER:PASSWORD for a classroom")


def main(args: argparse.Namespace) -> int:
    """``deepfake-lab demo``: build the app and serve it until Ctrl+C."""
    auth = parse_auth(args.auth)
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: use a port from 1 to 65535 (7860 is Gradio's usual one)")
    warning = host_warning(args.host, auth)
    if warning:
        print(f"deepfake-lab: {warning}", file=sys.stderr)
    from ..app import build_app, launch_options

    demo = build_app(device=args.device, weights_dir=args.weights, concurrency=args.concurrency,
                     batching=False if args.no_batching else None)
    print(f"deepfake-lab: serving on http://{args.host}:{args.port} (Ctrl+C stops it)", file=sys.stderr)
    try:
        demo.launch(server_name=args.host, server_port=args.port, auth=auth, **launch_options())
    except OSError as err:
        raise UserError(f"--port {args.port} on {args.host}: cannot listen there ({err}); "
                        "choose another with --port, or stop the program that uses it") from err
    return 0


def add_commands(top_subparsers) -> None:
    """``deepfake-lab demo``."""
    p = top_subparsers.add_parser(
        "demo", help="the classroom demo app in a browser (http://127.0.0.1:7860)",
        description="Serve the lessons' demo models in a browser. Binds to this computer only unless --host "
                    "says otherwise; every image it returns is labelled synthetic.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0: the whole network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--auth", metavar="USER:PASSWORD", default=os.environ.get("DEEPFAKE_LAB_AUTH") or None,
                   help="ask for this user name and password before the page opens (default: $DEEPFAKE_LAB_AUTH, "
                        "which keeps the password out of the process list)")
    p.add_argument("--weights", metavar="DIR",
                   help="a folder with other demo weights (same file names); missing ones come from the package")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="requests computed at the same time, the rest wait in order (default: "
                        "$DEEPFAKE_LAB_CONCURRENCY, else 2 per CPU core); torch's threads are the cores shared among them")
    p.add_argument("--no-batching", action="store_true",
                   help="run every image-to-image request alone, instead of stacking simultaneous requests for one "
                        "model into one forward pass (also: DEEPFAKE_LAB_BATCHING=0)")
    p.set_defaults(func=main)

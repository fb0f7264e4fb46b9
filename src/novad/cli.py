"""``novad`` command line: ``novad serve [--config FILE] [--state-dir DIR] [--listen HOST:PORT]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from novad import config as config_mod
from novad.errors import NovadError
from novad.logging import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="novad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the compute node daemon")
    serve.add_argument("--config", type=Path, help="TOML file (default: the embedded default)")
    serve.add_argument("--state-dir", help="state directory (default: ./var)")
    serve.add_argument("--listen", help="HOST:PORT of the API (default: 127.0.0.1:8774)")
    sub.add_parser("diagram", help="print the state diagram (Mermaid) generated from the table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit code 2 for bad configuration, 1 for start-up failures."""
    args = _parser().parse_args(argv)
    if args.command == "diagram":
        from novad.states.diagram import mermaid
        print(mermaid())
        return 0
    overrides: dict[str, dict[str, object]] = {"DEFAULT": {}}
    if args.state_dir:
        overrides["DEFAULT"]["state_dir"] = args.state_dir
    if args.listen:
        overrides["DEFAULT"]["listen"] = args.listen
    try:
        config = config_mod.load(args.config, overrides)
    except config_mod.ConfigError as exc:
        print(f"novad: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.DEFAULT.log_format)
    from novad.app import serve
    try:
        asyncio.run(serve(config))
    except NovadError as exc:
        print(f"novad: cannot start: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"novad: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

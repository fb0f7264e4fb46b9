"""``novad`` command line.

``novad serve [--config FILE] [--state-dir DIR] [--listen HOST:PORT]`` runs the daemon;
``novad cluster init-key FILE`` writes a new cluster key;
``novad cluster members [--json]`` asks the local node for the member list.
"""

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
    cluster = sub.add_parser("cluster", help="cluster key and membership")
    csub = cluster.add_subparsers(dest="cluster_command", required=True)
    init = csub.add_parser("init-key", help="write a new random cluster key (mode 0600)")
    init.add_argument("file", type=Path)
    members = csub.add_parser("members", help="the members this node knows")
    members.add_argument("--config", type=Path, help="the node's TOML file")
    members.add_argument("--state-dir", help="the node's state directory (default: ./var)")
    members.add_argument("--listen", help="the node's HOST:PORT (default: from the config)")
    members.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit code 2 for bad configuration, 1 for start-up failures."""
    args = _parser().parse_args(argv)
    if args.command == "diagram":
        from novad.states.diagram import mermaid
        print(mermaid())
        return 0
    if args.command == "cluster":
        return _cluster(args)
    config = _load(args)
    if config is None:
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


def _load(args: argparse.Namespace) -> config_mod.Config | None:
    """The configuration the flags name; None (after printing why) if bad."""
    overrides: dict[str, dict[str, object]] = {"DEFAULT": {}}
    if args.state_dir:
        overrides["DEFAULT"]["state_dir"] = args.state_dir
    if args.listen:
        overrides["DEFAULT"]["listen"] = args.listen
    try:
        return config_mod.load(args.config, overrides)
    except config_mod.ConfigError as exc:
        print(f"novad: configuration error: {exc}", file=sys.stderr)
        return None


def _cluster(args: argparse.Namespace) -> int:
    from novad.cluster import cli as cluster_cli
    from novad.cluster.auth import KeyFileError
    if args.cluster_command == "init-key":
        try:
            cluster_cli.init_key(args.file)
        except KeyFileError as exc:
            print(f"novad: {exc}", file=sys.stderr)
            return 1
        print(f"novad: cluster key written to {args.file}; copy it to every member")
        return 0
    config = _load(args)
    if config is None:
        return 2
    try:
        print(asyncio.run(cluster_cli.members(config, as_json=args.json)))
    except (KeyFileError, cluster_cli.PeerError) as exc:
        print(f"novad: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

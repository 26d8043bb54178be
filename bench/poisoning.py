"""Data poisoning on full ML-100K: detection precision/recall per attack x share, and the cold target
item's exposure in real users' SASRec top-10 trained clean / poisoned / defended (issue #11, LoRec).

    .venv/bin/python bench/poisoning.py [--inter DIR/ml-100k.inter]   (default: ML-100K fetched into the cache)
        [--seeds 0 1 2] [--shares 0.01 0.03 0.05] [--epochs 10] [--threads 1] [--exposure-seeds 1]
        [--exposure-shares 0.05] [--evasive]

The split is the protocol's (stable sort by time over file order; last = test, one before = valid).
Each seed picks another cold target (1-3 train interactions) and other fake users. Exposure: share
of real users whose test-time top-10 holds the target; `clean` trains without the fake users (same
index space), `defended` without every user the detector flagged. Detection is cheap (seconds);
exposure trains 1 + 2 x attacks x exposure-shares SASRec models per exposure seed (the slow part:
about 2-3 minutes a model on full ML-100K on this shared 2-core CPU).
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models.recsys.data import SplitData, leave_one_out
from models.recsys.metrics import evaluate
from models.recsys.sasrec import SASRec
from models.robustness.poisoning import ATTACKS, exposure, inject, pick_target
from models.robustness.poisoning_detector import detect, precision_recall
from orchestration.core.datasets import fetch_ml100k
from orchestration.core.paths import Lake
from orchestration.core.settings import home_from_env


def protocol_frame(inter: Path) -> pd.DataFrame:
    raw = pd.read_csv(inter, sep="\t", dtype=str)
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    raw = raw.assign(event_ts=lambda d: pd.to_datetime(d["timestamp"].astype(int), unit="s"))
    return leave_one_out(raw, source_file=inter.name)[
        ["user_id", "item_id", "event_ts", "split", "source_file", "source_row"]
    ]


def target_exposure(
    data: SplitData, fit_data: SplitData, real: np.ndarray, target: int, epochs: int, seed: int
) -> float:
    model = SASRec(SASRec.Config(max_epochs=epochs, patience=epochs, seed=seed, device="cpu"))
    model.fit(fit_data, log=lambda _: None)
    test = evaluate(model, data, "test")
    return exposure(test.topk[real[test.users]], target)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--inter", type=Path, default=None, help="ml-100k.inter (default: fetched into the cache)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.01, 0.03, 0.05])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--exposure-seeds",
        type=int,
        default=1,
        help="how many of --seeds also train SASRec (0: none)",
    )
    parser.add_argument(
        "--evasive",
        action="store_true",
        help="the target only inside the fakes' sequences, never their last train item",
    )
    parser.add_argument(
        "--exposure-shares",
        type=float,
        nargs="+",
        default=[0.05],
        help="shares that also train SASRec",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frame = protocol_frame(
        args.inter or fetch_ml100k(Lake(home_from_env()).cache) / "ml-100k.inter"
    )

    clean_report = detect(SplitData.from_splits(frame))
    n_fp = int(clean_report["flagged"].sum())
    print(
        f"clean data: {n_fp} of {len(clean_report)} real users flagged ({n_fp / len(clean_report):.2%}): "
        f"{clean_report.loc[clean_report['flagged'], 'reasons'].value_counts().to_dict()}"
    )

    rows = []
    for k, seed in enumerate(args.seeds):
        target_id = pick_target(frame, seed=seed)
        train_exposure = k < args.exposure_seeds
        clean_exposure = None
        for attack in ATTACKS:
            for share in args.shares:
                started = time.perf_counter()
                poisoned = inject(
                    frame, attack, share, target_id, seed=seed, at_end=not args.evasive
                )
                data = SplitData.from_splits(poisoned.frame)
                report = detect(data)
                precision, recall = precision_recall(report, poisoned.fake_users)
                row = {
                    "attack": attack,
                    "share": share,
                    "seed": seed,
                    "target": target_id,
                    "fakes": len(poisoned.fake_users),
                    "precision": precision,
                    "recall": recall,
                }
                if train_exposure and share in args.exposure_shares:
                    real = ~np.isin(data.users, list(poisoned.fake_users))
                    target = int(np.flatnonzero(data.items == target_id)[0])
                    if clean_exposure is None:  # the clean model does not depend on the attack
                        clean_exposure = target_exposure(
                            data,
                            data.without_users(np.flatnonzero(~real)),
                            real,
                            target,
                            args.epochs,
                            seed,
                        )
                    flagged = np.flatnonzero(report["flagged"].to_numpy())
                    row |= {
                        "exp_clean": clean_exposure,
                        "exp_poisoned": target_exposure(
                            data, data, real, target, args.epochs, seed
                        ),
                        "exp_defended": target_exposure(
                            data, data.without_users(flagged), real, target, args.epochs, seed
                        ),
                    }
                rows.append(row)
                print(
                    " ".join(
                        f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}"
                        for key, value in row.items()
                    )
                    + f" ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )

    table = pd.DataFrame(rows)
    summary = []
    for (attack, share), group in table.groupby(["attack", "share"], sort=False):

        def cell(column, group=group):
            values = group[column].dropna().tolist() if column in group else []
            if not values:
                return "-"
            return f"{statistics.mean(values):.3f}" + (
                f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
            )

        summary.append(
            {
                "attack": attack,
                "share": f"{share:.0%}",
                "fakes": int(group["fakes"].iloc[0]),
                "precision": cell("precision"),
                "recall": cell("recall"),
                "exposure clean": cell("exp_clean"),
                "poisoned": cell("exp_poisoned"),
                "defended": cell("exp_defended"),
            }
        )
    print(
        f"\n{'EVASIVE (target never last) ' if args.evasive else ''}seeds {args.seeds} (detection), "
        f"SASRec {args.epochs} epochs on the first {args.exposure_seeds} "
        f"seed(s) (exposure); mean ± std over seeds"
    )
    print(pd.DataFrame(summary).to_markdown(index=False))


if __name__ == "__main__":
    main()

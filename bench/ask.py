"""Benchmark: does `reclake ask` read requests right, keep their constraints, and find the film?

    .venv/bin/python bench/ask.py --home ~/.reclake --users 200 --parsers rules qwen2.5-coder-0.5b \\
        [--llm-users 40] [--out ask.json]

For each sampled user with a test film (the protocol's leave-one-out split), one request per level
(models/ask/requests.py: clear, loose, vague) is built from that film's genres and decade and from
the film of the user's own history nearest to it; never its title. The history is the user's
train and valid events, so the film is held out of what the champion reads. Per parser and level:
- valid parses: answers whose fields parsed (an LLM's cut-short JSON falls back to the rules);
- field exact-match: genres to include and exclude, the year range and the named film all right;
- constraint satisfaction: of the films returned, the share meeting every hard constraint the
  request implies (not the parsed one: a misread request shows here);
- Hit@10 of the held-out film, against the champion alone (its top 10 for the same history), the
  ratio with its 95% interval over users;
- p50/p95 seconds per answer on a warm process (parse, tools, reasons);
- reasons: claims no card or profile holds, over every answer;
- films invented: of 20 requests that name no film (requests.NO_FILM_REQUESTS), those the parser
  names one in.
An LLM rung alone is slow on a CPU: it reads the first --llm-users users only, and the rules are
measured again on those users beside it. The parsers with rules in them read every user.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.ask.fields import AskFields
from models.ask.parsers import load_parser
from models.ask.rank import rank
from models.ask.requests import (
    LEVELS,
    NO_FILM_REQUESTS,
    field_matches,
    make_request,
    nearest_in_history,
)
from models.common.stats import bootstrap_mean, paired_interval, ratio_interval
from orchestration.ask import PARSE_FAILED, AskService
from orchestration.core.paths import Lake
from orchestration.core.warehouse import query


def held_out(home: Path, users: int, seed: int) -> pd.DataFrame:
    """Sampled users' test film and their train + valid history (time order)."""
    splits = query(
        Lake(home).warehouse,
        "select user_id, item_id, split from main.splits order by user_id, event_ts, source_row",
    )
    test = splits[splits["split"] == "test"].sample(frac=1, random_state=seed).head(users)
    history = splits[splits["split"] != "test"].groupby("user_id")["item_id"].agg(list)
    return test.assign(history=test["user_id"].map(history)).dropna(subset=["history"])


def build_requests(service: AskService, users: pd.DataFrame, seed: int) -> list[dict]:
    catalogue, rows = service.catalogue, service.catalogue.row_of
    rng = np.random.default_rng(seed)
    cases = []
    for user in users.itertuples():
        test_row = rows.get(user.item_id)
        history_rows = [rows[i] for i in user.history if i in rows]
        if test_row is None or not history_rows:
            continue
        like_row = nearest_in_history(service.cards, test_row, history_rows)
        for level in LEVELS:
            request = make_request(catalogue, test_row, like_row, level, rng)
            if request is not None:
                cases.append({"user": user, "test_row": test_row, "request": request})
    return cases


def champion_alone(service: AskService, user, k: int = 10) -> list[str]:
    seen = service.catalogue.with_same_titles(np.isin(service.catalogue.item_ids, user.history))
    personal = service.personal_scores(user.user_id, list(user.history), [])
    top, _ = rank(AskFields(k=k), np.ones(len(seen), bool), personal, seen, [], None, None)
    return service.catalogue.item_ids[top].tolist()


def profile_use(service: AskService, answer: dict) -> tuple[int, int]:
    """Films on the list with an LLM profile, and reasons naming a keyword from their profile."""
    profiled = [i for i in answer["items"] if service.profiles.get(i["item_id"])]
    return len(profiled), sum("its profile mentions" in i["reason"] for i in profiled)


def reason_claims(service: AskService, answer: dict) -> int:
    """Claims in the reasons that the film's card, the named film's card or its profile lack: a
    genre it does not have, a year not its own, a word its card or profile is said to hold but
    does not."""
    rows = service.catalogue.row_of
    like = [rows[i] for i in answer["fields"]["like_item_ids"]]
    claims = 0
    for item in answer["items"]:
        row = rows[item["item_id"]]
        allowed = service.catalogue.genres[row] | {
            g for r in like for g in service.catalogue.genres[r]
        }
        sources = {
            "card": service.catalogue.cards[row].lower(),
            "profile": (service.profiles.get(item["item_id"]) or "").lower(),
        }
        for part in item["reason"].split("; "):
            if m := re.match(r"its (card|profile) mentions (.*)\.?$", part):
                quoted = re.findall(r"'([^']+)'", m.group(2))
                claims += sum(q.lower() not in sources[m.group(1)] for q in quoted)
                continue
            claims += sum(
                1
                for genre in service.catalogue.genre_vocabulary
                if re.search(rf"\b{re.escape(genre)}\b", part) and genre not in allowed
            )
            claims += sum(
                1
                for year in re.findall(r"\b1\d{3}\b|\b20\d\d\b", part)
                if int(year) != item["year"]
            )
    return claims


def measure(service: AskService, cases: list[dict], alone: dict) -> dict:
    out = {}
    for level in LEVELS:
        rows = []
        for case in (c for c in cases if c["request"].level == level):
            user, request = case["user"], case["request"]
            answer = service.answer(user.user_id, request.text, history=list(user.history))
            parsed = AskFields(
                **{k: v for k, v in answer["fields"].items() if k != "like_item_ids"}
            )
            like_rows = [service.catalogue.row_of[i] for i in answer["fields"]["like_item_ids"]]
            matches = field_matches(
                parsed, request.expected, [service.catalogue.titles[r] for r in like_rows]
            )
            returned = [service.catalogue.row_of[i["item_id"]] for i in answer["items"]]
            meets = service.catalogue.meets(request.expected)
            top10 = [i["item_id"] for i in answer["items"][:10]]
            test_item = service.catalogue.item_ids[case["test_row"]]
            profiled, quoted = profile_use(service, answer)
            rows.append(
                {
                    "user_id": user.user_id,
                    "valid": not any(n.startswith(PARSE_FAILED) for n in answer["notices"]),
                    "exact": all(matches.values()),
                    **{f"match_{k}": v for k, v in matches.items()},
                    "n_returned": len(returned),
                    "n_meeting": int(meets[returned].sum()) if returned else 0,
                    "hit": float(test_item in top10),
                    "hit_alone": float(test_item in alone[user.user_id]),
                    "seconds": answer["seconds"],
                    "claims": reason_claims(service, answer),
                    "profiled": profiled,
                    "quoted": quoted,
                    "text": request.text,
                }
            )
        frame = pd.DataFrame(rows)
        ratio, interval = ratio_interval(frame["hit"], frame["hit_alone"])
        out[level] = {
            "requests": len(frame),
            "valid_parses": round(frame["valid"].mean(), 4),
            "field_exact_match": round(frame["exact"].mean(), 4),
            "field_exact_match_ci": bootstrap_mean(frame["exact"].astype(float)),
            **{c: round(frame[c].mean(), 4) for c in frame if c.startswith("match_")},
            "constraint_satisfaction": round(
                frame["n_meeting"].sum() / max(frame["n_returned"].sum(), 1), 4
            ),
            "films_per_answer": round(frame["n_returned"].mean(), 2),
            "hit_at_10": round(frame["hit"].mean(), 4),
            "hit_at_10_alone": round(frame["hit_alone"].mean(), 4),
            "hit_ratio": None if ratio is None else round(ratio, 2),
            "hit_ratio_ci": None if interval is None else [round(b, 2) for b in interval],
            "p50_s": round(float(frame["seconds"].quantile(0.5)), 3),
            "p95_s": round(float(frame["seconds"].quantile(0.95)), 3),
            "reason_claims": int(frame["claims"].sum()),
            "films_with_profile": int(frame["profiled"].sum()),
            "reasons_naming_profile_words": int(frame["quoted"].sum()),
            "answers": len(frame),
            "misread_examples": frame.loc[~frame["exact"], "text"].head(3).tolist(),
            "hits": frame["hit"].tolist(),  # per request, in the same order for every parser
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--llm-users", type=int, default=40)
    parser.add_argument(
        "--parsers", nargs="+", default=["rules", "smollm2-135m", "qwen2.5-coder-0.5b"]
    )
    parser.add_argument("--cache", type=Path, default=None, help="the LLM model cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    service = AskService.load(args.home, "rules", args.cache)
    users = held_out(args.home, args.users, args.seed)
    cases = build_requests(service, users, args.seed)
    alone = {u.user_id: champion_alone(service, u) for u in users.itertuples()}
    print(
        f"{len(users)} users, {len(cases)} requests; champion {service.champion.model_name} v{service.champion.version}"
    )
    report = {
        "users": len(users),
        "seed": args.seed,
        "champion": service.champion.model_name,
        "parsers": {},
    }
    first = set(users["user_id"].head(args.llm_users))
    runs = [(name, "rules" in name) for name in args.parsers]
    if any(not everyone for _, everyone in runs):  # the rules again on the LLM rungs' users
        runs.append(("rules", False))
    for name, everyone in runs:
        started = time.perf_counter()
        service.parse = load_parser(name, service.catalogue, args.cache or Lake(args.home).cache)
        service.parser_name = name
        subset = cases if everyone else [c for c in cases if c["user"].user_id in first]
        label = name if everyone else f"{name} (first {args.llm_users} users)"
        service.answer(
            subset[0]["user"].user_id, "warm up", history=list(subset[0]["user"].history)
        )
        report["parsers"][label] = measure(service, subset, alone)
        invented = [t for t in NO_FILM_REQUESTS if service.parse(t).like]
        report["parsers"][label]["clear"]["films_invented"] = len(invented)
        print(
            f"films named in {len(invented)} of {len(NO_FILM_REQUESTS)} requests naming none {invented}"
        )
        print(f"\n== {label} ({time.perf_counter() - started:.0f} s)")
        print(pd.DataFrame(report["parsers"][label]).drop(["misread_examples", "hits"]).to_string())
        for level, row in report["parsers"][label].items():
            for text in row["misread_examples"]:
                print(f"  misread ({level}): {text}")
    for label, levels in report["parsers"].items():  # paired over the same requests
        if label == "rules" or "rules" not in report["parsers"] or "first" in label:
            continue
        for level, row in levels.items():
            difference = np.array(row["hits"]) - np.array(report["parsers"]["rules"][level]["hits"])
            low, high = paired_interval(difference, seed=args.seed)
            row["hit_minus_rules"] = [round(difference.mean(), 4), round(low, 4), round(high, 4)]
            print(
                f"{label} {level}: hit@10 minus the rules' {difference.mean():+.3f} [{low:+.3f}, {high:+.3f}]"
            )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""The daily loop's profile refresh (item_profiles and user_profiles in a landed day's run).

Profiles whose input did not change cost nothing (the LLM cache). Of those that changed, a day
writes every new item's and user's (none has a profile yet) and then at most RECLAKE_LLM_DAILY_BUDGET
more: first the ones queued longest, then the rest in id order. The others keep their last profile
and wait in lake/profiles/<kind>s/queue.parquet. Each profile row says, in `as_of`, the last landed
day of the data its input was read from (NULL outside the daily loop); a deferred one keeps its own.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from orchestration.core.files import write_parquet_atomic


class DailyRefresh:
    def __init__(self, kind: str, profiles_path: Path, as_of: str, budget: int):
        self.kind, self.id, self.as_of, self.budget = kind, f"{kind}_id", as_of, budget
        self.queue_path = profiles_path.parent / "queue.parquet"
        self.previous = pd.read_parquet(profiles_path) if profiles_path.exists() else None
        self.queue = (
            pd.read_parquet(self.queue_path)
            if self.queue_path.exists()
            else pd.DataFrame({self.id: [], "queued_since": []}, dtype=str)
        )

    def order(self, inputs: list[tuple[str, dict]]) -> tuple[list, int]:
        """The inputs in refresh order (new, queued oldest first, the rest) and the run's budget."""
        known = set() if self.previous is None else set(self.previous[self.id])
        since = dict(zip(self.queue[self.id], self.queue["queued_since"]))
        new = [x for x in inputs if x[0] not in known]
        queued = sorted(
            (x for x in inputs if x[0] in since and x[0] in known), key=lambda x: since[x[0]]
        )
        rest = [x for x in inputs if x[0] in known and x[0] not in since]
        return new + queued + rest, len(new) + self.budget

    def merge(self, frame: pd.DataFrame, deferred: list[str]) -> pd.DataFrame:
        """This run's profiles stamped as of today, the deferred ones' last profiles, and the queue
        written for the next day."""
        frame = frame.assign(as_of=self.as_of)
        kept = pd.DataFrame(columns=frame.columns)
        if deferred and self.previous is not None:
            kept = self.previous[self.previous[self.id].isin(deferred)]
            if "as_of" not in kept:
                kept = kept.assign(as_of=None)
        merged = pd.concat([frame, kept[frame.columns]], ignore_index=True)
        since = dict(zip(self.queue[self.id], self.queue["queued_since"]))
        queue = pd.DataFrame(
            {self.id: deferred, "queued_since": [since.get(i, self.as_of) for i in deferred]}
        )
        write_parquet_atomic(
            pa.Table.from_pandas(queue.astype(str), preserve_index=False), self.queue_path
        )
        return merged.sort_values(self.id, kind="stable").reset_index(drop=True)

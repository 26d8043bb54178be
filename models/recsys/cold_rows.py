"""ID rows for films a sequential model never trained on, built from their nearest trained films.

A film without train interactions keeps a zero ID row (sasrec.start_known_items): in LLM-SASRec it
scores by its mapped text alone, which beside the trained films' ID rows never reaches a top 10
(cold-item HR@10 0 on ML-100K). Its nearest trained films by text vector lend it a row instead: the
mean of k of their rows, optionally rescaled to the median trained row norm (a mean of k rows is
shorter than any one of them).

k and the rescale are chosen on *pseudo-cold valid*, never on test: a seeded 30% of the trained
films get rows rebuilt the same way from the other 70%, and the valid users whose held-out film is
one of them are ranked over every candidate (HR@10). k = 0 (no rows lent) is a candidate too.

    trials = fill_untrained_rows(model, data)    # after fit; model.net has item_emb and item_text
"""

import numpy as np
import torch

from models.recsys.base import Log
from models.recsys.data import SplitData
from models.recsys.metrics import top_unseen

PSEUDO_COLD_SHARE = 0.3
CANDIDATES = ((0, False), (1, False), (1, True), (3, False), (3, True), (10, False), (10, True))


def nearest_mean_rows(
    rows: torch.Tensor,
    vectors: np.ndarray,
    donors: np.ndarray,
    targets: np.ndarray,
    k: int,
    rescale: bool = False,
) -> torch.Tensor:
    """[len(targets), hidden]: for each target (an index into rows and vectors), the mean row of
    its k donors nearest by cosine of `vectors`; a target without a text vector gets the mean row of
    all donors. `rescale`: each result scaled to the median norm of the donors' rows."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    nearest = np.argsort(-(unit[targets] @ unit[donors].T), axis=1, kind="stable")[:, :k]
    donor_rows = rows[torch.as_tensor(donors, device=rows.device)]
    out = donor_rows[torch.as_tensor(nearest, device=rows.device)].mean(1)
    no_text = np.linalg.norm(vectors[targets], axis=1) == 0
    out[torch.as_tensor(no_text, device=rows.device)] = donor_rows.mean(0)
    if rescale:
        median = donor_rows.norm(dim=1).median()
        out = out / out.norm(dim=1, keepdim=True).clamp_min(1e-12) * median
    return out


def _hit_rate_at_10(model, data: SplitData, users: np.ndarray) -> float:
    _, top, _, _ = top_unseen(model, data, "valid", k=10, users=users)
    return float((top == data.target("valid")[users][:, None]).any(axis=1).mean())


@torch.no_grad()
def fill_untrained_rows(
    model, data: SplitData, seed: int = 0, log: Log = print, vectors: np.ndarray | None = None
) -> list[dict]:
    """Choose (k, rescale) on pseudo-cold valid, then give every untrained film (if any) its row
    from all trained films that way, nearest by `vectors` (default: the model's item text).
    Returns the trials: k, rescale, users, valid HR@10."""
    weight = model.net.item_emb.weight
    vectors = model.net.item_text.cpu().numpy() if vectors is None else vectors
    trained = np.flatnonzero(data.train_counts() > 0)
    untrained = np.flatnonzero(data.train_counts() == 0)
    if not len(untrained) or len(trained) < 2:
        return []
    rng = np.random.default_rng(seed)
    pseudo = np.sort(rng.choice(trained, max(1, int(PSEUDO_COLD_SHARE * len(trained))), False))
    donors = np.setdiff1d(trained, pseudo)
    valid_users = data.eval_users("valid")
    users = valid_users[np.isin(data.target("valid")[valid_users], pseudo)]
    if not len(users):
        return []
    original, trials = weight.detach().clone(), []
    for k, rescale in CANDIDATES:
        rows = weight[1:]  # row 0 pads
        rows[pseudo] = nearest_mean_rows(rows, vectors, donors, pseudo, k, rescale) if k else 0.0
        hit = _hit_rate_at_10(model, data, users)
        trials.append({"k": k, "rescale": rescale, "users": len(users), "valid_hr@10": hit})
        weight.copy_(original)
    # ties go to the simpler rule (fewer neighbours, no rescale): CANDIDATES is in that order
    best = max(trials, key=lambda t: t["valid_hr@10"])
    if best["k"]:
        weight[1:][untrained] = nearest_mean_rows(
            weight[1:], vectors, trained, untrained, best["k"], best["rescale"]
        )
    log(
        f"{model.name}: {len(untrained)} untrained films get rows from their {best['k']} nearest "
        f"trained films by text (rescaled: {best['rescale']}), chosen on pseudo-cold valid "
        f"(HR@10 {best['valid_hr@10']:.4f} over {len(users)} users; none lent: "
        f"{trials[0]['valid_hr@10']:.4f})"
    )
    return trials

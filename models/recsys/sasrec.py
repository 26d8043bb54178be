"""SASRec (Kang & McAuley, 2018): a causal self-attention encoder over each user's item sequence.

Trained with cross-entropy over all train items at every position (no negative sampling): Klenitskiy &
Vasilev (2023) showed this makes SASRec beat BERT4Rec. Item embeddings are tied between input and
output. Early stopping on valid NDCG@10; the best epoch's weights are kept.

    model = SASRec(SASRecConfig(max_epochs=50, seed=0)); result = model.fit(data)
    scores = model.score_all(users, histories)      # [len(users), n_items]

`item_table()` is the one hook a subclass needs to change what an item is (llm_sasrec.py).
"""

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.common.device import pick_device
from models.common.progress import bar
from models.recsys.base import FitResult, Log, Timer, seed_everything
from models.recsys.data import SplitData, require_min_size
from models.recsys.metrics import evaluate


@dataclass
class SASRecConfig:
    max_len: int = 50  # most recent items a user is represented by (longer histories: more windows)
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    lr: float = 2e-3
    weight_decay: float = 0.0
    batch_size: int = 128  # sequence windows per step
    max_epochs: int = 200
    patience: int = 10  # epochs without a better valid NDCG@10 before stopping
    seed: int = 0
    device: str = "auto"


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention, then a GELU MLP (as in nanoGPT)."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv, self.proj = nn.Linear(hidden, 3 * hidden), nn.Linear(hidden, hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 4 * hidden),
            nn.GELU(),
            nn.Linear(4 * hidden, hidden),
            nn.Dropout(dropout),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, hidden = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(hidden, dim=2)
        q, k, v = (
            t.view(b, length, self.heads, hidden // self.heads).transpose(1, 2) for t in (q, k, v)
        )
        attn = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, length, hidden)))
        return x + self.mlp(self.norm2(x))


class SASRecNet(nn.Module):
    """Item ids are 1..n_items (0 pads); sequences are left-padded to max_len."""

    def __init__(self, n_items: int, config: SASRecConfig):
        super().__init__()
        self.config = config
        self.item_emb = nn.Embedding(n_items + 1, config.hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(config.max_len, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config.hidden, config.heads, config.dropout) for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.hidden)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    def item_table(self) -> torch.Tensor:
        """[n_items + 1, hidden]: row 0 is padding. Used for input and (tied) output."""
        return self.item_emb.weight

    def encode(
        self,
        seqs: torch.Tensor,
        users: torch.Tensor | None = None,
        table: torch.Tensor | None = None,
    ) -> torch.Tensor:
        table = self.item_table() if table is None else table
        length = seqs.shape[1]
        real = seqs > 0
        x = table[seqs] * math.sqrt(self.config.hidden) + self.pos_emb.weight[-length:]
        x = self.drop(x) * real.unsqueeze(-1)
        # causal, and never attend to padding (a padded query still sees itself, so no row is empty)
        causal = torch.ones(length, length, dtype=torch.bool, device=seqs.device).tril()
        mask = (causal & real[:, None, :]) | torch.eye(length, dtype=torch.bool, device=seqs.device)
        for block in self.blocks:
            x = block(x, mask.unsqueeze(1))
        return self.norm(x)

    def logits(self, hidden: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return hidden @ table[1:].T  # over items 1..n -> indices 0..n-1


def left_pad(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """The last `length` items of each sequence, +1 (0 is padding), right-aligned."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = np.asarray(seq[-length:], dtype=np.int64) + 1
        if len(tail):
            out[row, -len(tail) :] = tail
    return out


def training_windows(train: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's train sequence cut from the end into windows of max_len + 1 items (inputs plus
    the next-item targets), so long histories are used whole; returns windows and their users."""
    windows, owners = [], []
    for user, seq in enumerate(train):
        end = len(seq)
        while end >= 2:
            windows.append(seq[max(0, end - max_len - 1) : end])
            owners.append(user)
            end -= max_len
    return left_pad(windows, max_len + 1), np.asarray(owners, dtype=np.int64)


def length_batches(
    windows: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Batches of windows of similar length, in random order: most histories are far shorter than
    max_len, so this cuts the padding the encoder works through (about 2x faster on ML-100K)."""
    lengths = (windows > 0).sum(axis=1)
    order = np.lexsort((rng.random(len(windows)), lengths))
    batches = np.array_split(order, max(1, len(windows) // batch_size))
    return [batches[k] for k in rng.permutation(len(batches))]


def trim_padding(seqs: np.ndarray) -> np.ndarray:
    """Drop the leading columns that are padding in every row (sequences are left-padded)."""
    real = (seqs > 0).any(axis=0)
    return seqs[:, real.argmax() :] if real.any() else seqs


class SASRec:
    name = "sasrec"
    Config = SASRecConfig
    min_items = 3

    def __init__(self, config: SASRecConfig):
        self.config = config
        self.device = pick_device(config.device)
        self.net: SASRecNet | None = None

    def build_net(self, n_items: int) -> SASRecNet:
        return SASRecNet(n_items, self.config)

    def fit(self, data: SplitData, log: Log = print) -> FitResult:
        cfg = self.config
        require_min_size(data, self.name, min_users=2, min_items=self.min_items)
        rng = seed_everything(cfg.seed)
        self.net = self.build_net(data.n_items).to(self.device)
        known = self.start_known_items(data)
        windows, owners = training_windows(data.train, cfg.max_len)
        if len(windows) == 0:
            raise ValueError(
                f"{self.name}: no user has 2 or more train items to learn a next item from"
            )
        optimizer = torch.optim.Adam(
            self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        result, best_state, waited, timer = FitResult(), None, 0, Timer()
        progress = bar(
            cfg.max_epochs, f"{self.name} epochs (early stopping may end sooner)", "epoch"
        )
        for epoch in range(1, cfg.max_epochs + 1):
            epoch_timer = Timer()
            loss = self._train_epoch(windows, owners, optimizer, rng, known)
            valid = evaluate(self, data, "valid").metrics["ndcg@10"]
            progress.update(1)
            progress.set_postfix(valid_ndcg10=f"{valid:.4f}")
            result.epochs.append(
                {
                    "epoch": epoch,
                    "train_loss": loss,
                    "valid_ndcg@10": valid,
                    "seconds": epoch_timer(),
                }
            )
            log(
                f"{self.name} epoch {epoch}: loss {loss:.4f}, valid NDCG@10 {valid:.4f} ({epoch_timer():.1f} s)"
            )
            if valid > result.best_valid_ndcg10 or best_state is None:
                result.best_epoch, result.best_valid_ndcg10 = epoch, valid
                best_state, waited = copy.deepcopy(self.net.state_dict()), 0
            else:
                waited += 1
                if waited >= cfg.patience:
                    log(
                        f"{self.name}: no valid gain for {waited} epochs, stopping; best epoch {result.best_epoch}"
                    )
                    break
        progress.close()
        self.net.load_state_dict(best_state)
        result.seconds = timer()
        return result

    def start_known_items(self, data: SplitData) -> torch.Tensor:
        """The items with train interactions (what the model may learn about), as a mask; the rows
        of the others start at zero and stay there (no input holds them, no loss term reaches them),
        so an item the model never saw scores by its content alone (llm_sasrec) or as nothing."""
        known = torch.as_tensor(data.train_counts() > 0, device=self.device)
        with torch.no_grad():
            self.net.item_emb.weight[1:][~known] = 0.0
        return known

    def _train_epoch(
        self,
        windows: np.ndarray,
        owners: np.ndarray,
        optimizer,
        rng: np.random.Generator,
        known: torch.Tensor,
    ) -> float:
        self.net.train()
        total, count = 0.0, 0
        for batch in length_batches(windows, self.config.batch_size, rng):
            seqs = torch.as_tensor(trim_padding(windows[batch]), device=self.device)
            inputs, targets = seqs[:, :-1], seqs[:, 1:]
            table = self.net.item_table()
            hidden = self.net.encode(
                inputs, torch.as_tensor(owners[batch], device=self.device), table
            )
            where = (inputs > 0) & (targets > 0)  # a next item that follows a real one
            # the softmax runs over the known items only: an item absent from train (a cold film) is
            # not a negative the model learns to push down, it is unknown
            logits = self.net.logits(hidden[where], table).masked_fill(~known, float("-inf"))
            loss = F.cross_entropy(logits, targets[where] - 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = int(where.sum())
            total, count = total + loss.item() * n, count + n
        return total / max(count, 1)

    @torch.no_grad()
    def score_all(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        self.net.eval()
        seqs = torch.as_tensor(
            trim_padding(left_pad(histories, self.config.max_len)), device=self.device
        )
        table = self.net.item_table()
        hidden = self.net.encode(seqs, torch.as_tensor(users, device=self.device), table)[:, -1]
        return self.net.logits(hidden, table)

    def state(self) -> dict:
        return {
            "n_items": self.net.item_emb.num_embeddings - 1,
            "weights": {k: v.cpu() for k, v in self.net.state_dict().items()},
        }

    @classmethod
    def unfitted(cls, config: SASRecConfig, saved: dict) -> "SASRec":
        """The model before its weights are loaded (a subclass adds what its net is built from)."""
        return cls(config)

    @classmethod
    def from_state(cls, config: SASRecConfig, saved: dict) -> "SASRec":
        model = cls.unfitted(config, saved)
        model.net = model.build_net(saved["n_items"])
        model.net.load_state_dict(saved["weights"])
        model.net.to(model.device)
        return model

"""Maximal marginal relevance: trade a little relevance for less look-alike lists."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from plugin.engine.data import Interactions

__all__ = ["co_purchase_vectors", "mmr"]


def co_purchase_vectors(x: Interactions) -> sp.csr_matrix:
    """Items x shoppers, L2-normalised: two items are similar when the same people buy both."""
    return normalize(x.to_csr("binary").T.tocsr()).tocsr()


def mmr(relevance: np.ndarray, vectors: sp.csr_matrix | np.ndarray | None, n: int,
        diversity: float) -> np.ndarray:
    """Order of the first ``n`` picks by ``(1 - diversity) * rel - diversity * max_sim``.

    ``relevance`` is rescaled to [0, 1]; ``vectors`` are unit rows (one per candidate).
    ``diversity=0`` keeps the relevance order (and needs no ``vectors``).
    """
    k = min(n, len(relevance))
    if diversity <= 0 or k <= 1:
        return np.argsort(-relevance, kind="stable")[:k]
    if vectors is None:
        raise ValueError("mmr with diversity > 0 needs the candidates' vectors")
    rel = np.asarray(relevance, np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sims = vectors @ vectors.T
    sims = sims.toarray() if sp.issparse(sims) else np.asarray(sims)
    chosen: list[int] = []
    max_sim = np.zeros(len(rel))
    free = np.ones(len(rel), bool)
    for _ in range(k):
        gain = np.where(free, (1 - diversity) * rel - diversity * max_sim, -np.inf)
        best = int(np.argmax(gain))
        chosen.append(best)
        free[best] = False
        max_sim = np.maximum(max_sim, sims[best])
    return np.asarray(chosen, np.int64)

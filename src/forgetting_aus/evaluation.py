"""Classifier evaluation: Table 1, confusion matrices, per-class recall and McNemar.

Labels are given either as integer class indices ``0..K-1`` into ``class_names`` or as the
class names themselves; every table is labelled with ``class_names`` in that order.

- :func:`classification_table` / :func:`table1` — per-class precision, recall and F1 with
  macro averages and accuracy, in the layout of the paper's Table 1;
- :func:`bootstrap_ci` / :func:`table1_with_ci` — cluster-bootstrap intervals that resample
  whole subjects (frames of one subject are not independent test cases);
- :func:`per_class_recall`, :func:`confusion`;
- :func:`mcnemar_per_class` / :func:`mcnemar_family` — the paper's §4.1 test of the recall
  of each emotion between FreezeB5 and another model, with a Holm correction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from forgetting_aus.stats import holm, mcnemar_test

#: Column groups of Table 1 and the label of the macro-average column.
METRICS: tuple[str, ...] = ("Precision", "Recall", "F1-score")
AVERAGE_LABEL = "Avg."
ACCURACY_LABEL = "Accuracy"


def _encode(y: np.ndarray, class_names: Sequence[str], what: str) -> np.ndarray:
    """Labels as integer indices into ``class_names``, with a clear error otherwise."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{what}: expected a 1-d label vector, got shape {y.shape}")
    k = len(class_names)
    if y.dtype.kind in "iub":
        codes = y.astype(int)
    elif y.dtype.kind in "OUS":
        lookup = {name: i for i, name in enumerate(class_names)}
        unknown = sorted({str(v) for v in y if v not in lookup})
        if unknown:
            raise ValueError(f"{what}: labels {unknown[:5]} are not in class_names "
                             f"{list(class_names)}; pass indices 0..{k - 1} or those names")
        codes = np.array([lookup[v] for v in y], dtype=int)
    elif y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        codes = y.astype(int)
    else:
        raise ValueError(f"{what}: expected integer class indices or class names, "
                         f"got dtype {y.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= k):
        raise ValueError(f"{what}: class indices must lie in 0..{k - 1} for {k} class_names, "
                         f"found {codes.min()}..{codes.max()}")
    return codes


def _encode_pair(y_true, y_pred, class_names, what: str) -> tuple[np.ndarray, np.ndarray]:
    t = _encode(y_true, class_names, f"{what} (y_true)")
    p = _encode(y_pred, class_names, f"{what} (y_pred)")
    if t.shape != p.shape:
        raise ValueError(f"{what}: y_true has {t.size} labels but y_pred has {p.size}; "
                         "pass the predictions of the same test images")
    return t, p


def table1_columns(class_names: Sequence[str]) -> pd.MultiIndex:
    """MultiIndex columns of Table 1: metric x (classes + Avg.), then Accuracy."""
    cells = [(m, c) for m in METRICS for c in (*class_names, AVERAGE_LABEL)]
    return pd.MultiIndex.from_tuples([*cells, (ACCURACY_LABEL, "")], names=["metric", "class"])


def _table_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Table 1 row(s) from confusion matrices of shape (..., K, K) (rows = true class).

    Precision/recall of a class with no predicted/true images is 0, as sklearn's
    ``zero_division`` default; the macro average includes such classes.
    """
    cm = np.asarray(cm, dtype=float)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    predicted = cm.sum(axis=-2)
    actual = cm.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
        accuracy = tp.sum(axis=-1) / cm.sum(axis=(-2, -1))
    parts = []
    for metric in (precision, recall, f1):
        parts += [metric, metric.mean(axis=-1, keepdims=True)]
    return np.concatenate([*parts, accuracy[..., None]], axis=-1)


def classification_table(y_true: np.ndarray, y_pred: np.ndarray, *,
                         class_names: Sequence[str], name: str = "model") -> pd.DataFrame:
    """One model's row of Table 1.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels (indices into ``class_names`` or the names).
    class_names : sequence of str, keyword-only
        Class names in index order, e.g. ``("No pain", "Pain")``.
    name : str, keyword-only
        Row label.

    Returns
    -------
    DataFrame of shape (1, 3 * (K + 1) + 1)
        Columns ``(metric, class)`` for metric in Precision, Recall, F1-score and class in
        ``class_names`` + ``"Avg."`` (macro average), then ``("Accuracy", "")``; values in
        [0, 1], computed with ``sklearn.metrics``.
    """
    t, p = _encode_pair(y_true, y_pred, class_names, "classification_table")
    labels = list(range(len(class_names)))
    precision, recall, f1, _ = precision_recall_fscore_support(
        t, p, labels=labels, average=None, zero_division=0)
    row = []
    for metric in (precision, recall, f1):
        row += [*metric, metric.mean()]  # macro average: every class counts the same
    row.append(accuracy_score(t, p))
    return pd.DataFrame([row], index=pd.Index([name], name="model"),
                        columns=table1_columns(class_names))


def table1(predictions: Mapping[str, np.ndarray], y_true: np.ndarray, *,
           class_names: Sequence[str]) -> pd.DataFrame:
    """Table 1: one :func:`classification_table` row per model, in the mapping's order.

    Parameters
    ----------
    predictions : mapping of model name -> array-like of shape (n,)
        Predicted labels of every model on the same test images.
    y_true : array-like of shape (n,)
    class_names : sequence of str, keyword-only
    """
    if not predictions:
        raise ValueError("table1: predictions is empty; pass {model_name: y_pred}")
    return pd.concat([classification_table(y_true, y_pred, class_names=class_names, name=m)
                      for m, y_pred in predictions.items()])


def _group_members(groups: np.ndarray, n: int) -> list[np.ndarray]:
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must give one subject/sequence id per test image: expected "
                         f"shape ({n},), got {g.shape}")
    _, inverse = np.unique(g, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse))[:-1]
    return np.split(order, bounds)


def _bootstrap_draws(n_groups: int, *, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_groups) indices of the groups drawn with replacement."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if n_groups < 2:
        raise ValueError(f"the cluster bootstrap needs at least 2 groups, got {n_groups}; "
                         "pass subject ids as groups (one group cannot show variability)")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_groups, size=(n_boot, n_groups))


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, *, groups: np.ndarray,
                 metric: Callable[[np.ndarray, np.ndarray], float], n_boot: int = 1000,
                 seed: int, level: float = 0.95) -> tuple[float, float, float]:
    """Cluster-bootstrap percentile interval of a metric, resampling whole groups.

    Test frames of one subject (or video sequence) are correlated, so the unit of
    resampling is the group: each replicate draws as many groups as there are, with
    replacement, and keeps all their images.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Labels as passed to ``metric``.
    groups : array-like of shape (n,), keyword-only
        Subject or sequence id of every test image.
    metric : callable ``(y_true, y_pred) -> float``, keyword-only
        E.g. ``sklearn.metrics.accuracy_score``.
    n_boot : int, keyword-only
        Number of bootstrap replicates.
    seed : int, keyword-only
        Seed of the resampling (same seed, same replicates).
    level : float, keyword-only
        Confidence level of the percentile interval.

    Returns
    -------
    (estimate, low, high) : tuple of float
        The metric on the full test set and the percentile interval.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    members = _group_members(groups, len(y_true))
    draws = _bootstrap_draws(len(members), n_boot=n_boot, seed=seed)
    replicates = np.empty(n_boot)
    for b, drawn in enumerate(draws):
        idx = np.concatenate([members[g] for g in drawn])
        replicates[b] = metric(y_true[idx], y_pred[idx])
    alpha = (1 - level) / 2
    low, high = np.nanquantile(replicates, [alpha, 1 - alpha])
    return float(metric(y_true, y_pred)), float(low), float(high)


def table1_with_ci(predictions: Mapping[str, np.ndarray], y_true: np.ndarray, *,
                   class_names: Sequence[str], groups: np.ndarray, n_boot: int = 1000,
                   seed: int, level: float = 0.95) -> pd.DataFrame:
    """Table 1 with cluster-bootstrap percentile intervals for every cell.

    All models are evaluated on the same bootstrap replicates (the same resampled
    groups), so their intervals are comparable. The cells are computed from per-group
    confusion matrices, which gives the same numbers as :func:`table1` (tested).

    Returns
    -------
    DataFrame
        Rows ``(model, stat)`` with stat in ``estimate``, ``low``, ``high``; columns as
        :func:`table1`.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    t = _encode(y_true, class_names, "table1_with_ci (y_true)")
    members = _group_members(groups, len(t))
    draws = _bootstrap_draws(len(members), n_boot=n_boot, seed=seed)
    # counts[b, g]: how often group g was drawn in replicate b.
    counts = np.zeros((n_boot, len(members)))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1)
    k = len(class_names)
    alpha = (1 - level) / 2
    frames = []
    for model, y_pred in predictions.items():
        _, p = _encode_pair(t, y_pred, class_names, f"table1_with_ci ({model})")
        per_group = np.stack([
            np.bincount(t[m] * k + p[m], minlength=k * k).reshape(k, k) for m in members])
        estimate = _table_from_confusion(per_group.sum(axis=0))
        boot = _table_from_confusion(np.einsum("bg,gij->bij", counts, per_group))
        low, high = np.quantile(boot, [alpha, 1 - alpha], axis=0)
        index = pd.MultiIndex.from_product([[model], ["estimate", "low", "high"]],
                                           names=["model", "stat"])
        frames.append(pd.DataFrame(np.stack([estimate, low, high]), index=index,
                                   columns=table1_columns(class_names)))
    if not frames:
        raise ValueError("table1_with_ci: predictions is empty; pass {model_name: y_pred}")
    return pd.concat(frames)


def format_with_ci(table: pd.DataFrame, *, decimals: int = 2) -> pd.DataFrame:
    """Render :func:`table1_with_ci` as strings ``"0.92 [0.90, 0.94]"``, one row per model."""
    fmt = f"{{:.{decimals}f}}"
    models = table.index.get_level_values("model").unique()
    rows = {}
    for model in models:
        est, low, high = (table.loc[(model, s)] for s in ("estimate", "low", "high"))
        rows[model] = [f"{fmt.format(e)} [{fmt.format(lo)}, {fmt.format(hi)}]"
                       for e, lo, hi in zip(est, low, high, strict=True)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=table.columns)


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray, *,
                     class_names: Sequence[str]) -> pd.Series:
    """Recall of every class (the quantity of the paper's Figure 4), in [0, 1].

    Returns
    -------
    Series indexed by ``class_names``; ``nan`` for a class with no test image.
    """
    t, p = _encode_pair(y_true, y_pred, class_names, "per_class_recall")
    cm = confusion_matrix(t, p, labels=list(range(len(class_names))))
    actual = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(actual > 0, np.diag(cm) / actual, np.nan)
    return pd.Series(recall, index=pd.Index(class_names, name="class"), name="recall")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, *, class_names: Sequence[str],
              normalize: str | None = None) -> pd.DataFrame:
    """Confusion matrix with rows = true class, columns = predicted class.

    Parameters
    ----------
    normalize : {None, "true"}, keyword-only
        ``None`` for counts (int), ``"true"`` to divide each row by its class size (rows
        of classes without test images are 0).
    """
    if normalize not in (None, "true"):
        raise ValueError(f"normalize must be None or 'true', got {normalize!r}")
    t, p = _encode_pair(y_true, y_pred, class_names, "confusion")
    cm = confusion_matrix(t, p, labels=list(range(len(class_names))), normalize=normalize)
    return pd.DataFrame(cm, index=pd.Index(class_names, name="true"),
                        columns=pd.Index(class_names, name="predicted"))


def mcnemar_per_class(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, *,
                      class_names: Sequence[str], exact_below: int = 25) -> pd.DataFrame:
    """McNemar's test of the recall of each class between models a and b.

    For each class, only that class's test images enter the paired 2x2 table of
    correct/incorrect predictions of a and b; the test is exact binomial when the
    discordant count ``b + c`` is below ``exact_below`` and chi-square with continuity
    correction otherwise (:func:`forgetting_aus.stats.mcnemar_test`).

    Returns
    -------
    DataFrame indexed by class
        ``n`` (images of the class), ``both_correct``, ``a_only`` (a correct, b wrong;
        the table's ``b``), ``b_only`` (the table's ``c``), ``both_wrong``, ``discordant``,
        ``test``, ``statistic``, ``p_value``, ``recall_a``, ``recall_b``.
    """
    t, a = _encode_pair(y_true, pred_a, class_names, "mcnemar_per_class (pred_a)")
    _, b = _encode_pair(y_true, pred_b, class_names, "mcnemar_per_class (pred_b)")
    rows = []
    for k, name in enumerate(class_names):
        mask = t == k
        correct_a, correct_b = a[mask] == k, b[mask] == k
        table = np.array([[np.sum(correct_a & correct_b), np.sum(correct_a & ~correct_b)],
                          [np.sum(~correct_a & correct_b), np.sum(~correct_a & ~correct_b)]])
        n = int(mask.sum())
        if n == 0:
            test, statistic, p_value = "no images", np.nan, np.nan
        else:
            test, statistic, p_value = mcnemar_test(table, exact_below=exact_below)
        rows.append({
            "class": name, "n": n,
            "both_correct": int(table[0, 0]), "a_only": int(table[0, 1]),
            "b_only": int(table[1, 0]), "both_wrong": int(table[1, 1]),
            "discordant": int(table[0, 1] + table[1, 0]),
            "test": test, "statistic": statistic, "p_value": p_value,
            "recall_a": correct_a.mean() if n else np.nan,
            "recall_b": correct_b.mean() if n else np.nan,
        })
    return pd.DataFrame(rows).set_index("class")


def mcnemar_family(y_true: np.ndarray, predictions: Mapping[str, np.ndarray], *,
                   reference: str, class_names: Sequence[str],
                   exact_below: int = 25) -> pd.DataFrame:
    """Per-class McNemar of ``reference`` (model a) against every other model (model b).

    Holm's correction runs over the whole family, every class x every comparison, and is
    added as ``p_holm``.

    Returns
    -------
    DataFrame
        Columns ``model_a`` (the reference), ``model_b``, ``class`` and those of
        :func:`mcnemar_per_class`, plus ``p_holm``.
    """
    if reference not in predictions:
        raise ValueError(f"reference {reference!r} is not among the models "
                         f"{list(predictions)}; pass e.g. reference='FreezeB5'")
    others = [m for m in predictions if m != reference]
    if not others:
        raise ValueError("mcnemar_family: need at least one model besides the reference")
    frames = []
    for model in others:
        df = mcnemar_per_class(y_true, predictions[reference], predictions[model],
                               class_names=class_names, exact_below=exact_below)
        frames.append(df.reset_index().assign(model_a=reference, model_b=model))
    family = pd.concat(frames, ignore_index=True)
    family["p_holm"] = holm(family["p_value"].to_numpy())
    front = ["model_a", "model_b", "class"]
    return family[front + [c for c in family.columns if c not in front]]

"""Figures of chapter 02: training curves and per-class recall (the confusion matrix: ``common.confusion_figure``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forgetting_aus.plots import common


def training_curves(history: dict, *, title: str) -> plt.Figure:
    """Loss (train, validation) and validation macro recall per epoch, best epoch marked."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_recall) = plt.subplots(1, 2, figsize=common.figsize(9, 3.2))
    ax_loss.plot(epochs, history["loss"], label="training")
    ax_loss.plot(epochs, history["val_loss"], label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("focal loss (per image)")
    ax_loss.legend(frameon=False)
    ax_recall.plot(epochs, history["val_macro_recall"], color="tab:green")
    best = int(history["best_epoch"]) + 1
    ax_recall.axvline(best, color="grey", ls="--", lw=1)
    ax_recall.annotate(f"selected: epoch {best}", (best, min(history["val_macro_recall"])), fontsize=8,
                       xytext=(4, 4), textcoords="offset points", color="grey")
    ax_recall.set_xlabel("epoch")
    ax_recall.set_ylabel("validation macro recall")
    ax_recall.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def per_class_recall_figure(recall: pd.Series, *, title: str) -> plt.Figure:
    """Bar chart of per-class recall with the chance level."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(recall.index, recall.to_numpy(), color="tab:blue")
    ax.axhline(1 / len(recall), color="grey", ls=":", lw=1, label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall on the test set")
    ax.set_xlabel("emotion")
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig

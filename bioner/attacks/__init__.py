"""Embedding-space adversaries (``conf/attack``): adversarial training and attacks for robustness
evaluation."""

from bioner.attacks.adversaries import (
    FGM,
    FGSM,
    PGD,
    VAT,
    AdversarialLoss,
    Adversary,
    FreeLB,
    Gradients,
    special_token_ids,
)

__all__ = [
    "FGM",
    "FGSM",
    "PGD",
    "VAT",
    "AdversarialLoss",
    "Adversary",
    "FreeLB",
    "Gradients",
    "special_token_ids",
]

"""Encoders and the token-classification model.

Kept import-light on purpose: importing :mod:`bioner.models` must not pull in torch or
transformers. Import what you need from the sub-modules (``bioner.models.encoders``).
"""

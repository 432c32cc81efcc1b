"""Corpora as documents with character spans, and the views computed from them."""

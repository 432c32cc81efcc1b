"""Small data files shipped with bioner (lexicons); read them with ``importlib.resources``."""

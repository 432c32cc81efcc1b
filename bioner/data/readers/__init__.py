"""Corpus readers: one class per file format, configured by ``conf/dataset/<name>.yaml``."""

from bioner.data.readers.base import CorpusNotFoundError, CorpusReader
from bioner.data.readers.bioc import BioCReader
from bioner.data.readers.brat import BratReader
from bioner.data.readers.i2b2 import I2B2Reader
from bioner.data.readers.iob import IOBReader
from bioner.data.readers.multi import MultiCorpusReader
from bioner.data.readers.pubtator import PubTatorReader

__all__ = [
    "BioCReader",
    "BratReader",
    "CorpusNotFoundError",
    "CorpusReader",
    "I2B2Reader",
    "IOBReader",
    "MultiCorpusReader",
    "PubTatorReader",
]

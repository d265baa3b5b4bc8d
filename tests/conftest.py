"""Shared fixtures. The embedded tokenizer is converted once into the user cache and reused by every test."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tokenizer():
    from instructerc.models import load_tokenizer

    return load_tokenizer("embedded")


@pytest.fixture(scope="session")
def count_tokens(tokenizer):
    from instructerc.data_builders.instructions import ChatTokenCounter

    return ChatTokenCounter(tokenizer)

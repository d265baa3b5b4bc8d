"""instructerc: LLM-based generative emotion reasoning for conversations."""

__version__ = "0.1.0"

"""Recommenders, one a file (popularity, ease, sasrec, llm_sasrec); `catalog.MODELS` names them all."""

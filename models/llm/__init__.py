"""LLM backends behind one small interface (see base.py): embedded (default, offline), hf, openai."""

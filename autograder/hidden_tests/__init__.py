"""The hidden checks as a pytest suite (see conftest.py for the options)."""

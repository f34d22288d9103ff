"""Test support shared by the suites: fakes and checkers (fixtures live in conftest.py)."""

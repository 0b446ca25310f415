"""Fixtures of each feature; conftest.py registers those of the features the service has."""

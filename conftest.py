"""Root conftest: the shared test fixtures live in the test-only package ecomops_testing."""

pytest_plugins = ["ecomops_testing.plugin"]

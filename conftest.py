"""Root conftest: the shared test fixtures live in ecomops_platform.testing."""

pytest_plugins = ["ecomops_platform.testing"]

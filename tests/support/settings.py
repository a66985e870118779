"""The settings of this test run (set in the environment by the conftest), read once."""

from app.core.config import get_settings

settings = get_settings()

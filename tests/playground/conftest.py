import pytest

# The flows assert for both browsers' tests; rewritten, their failures show the values compared.
pytest.register_assert_rewrite("tests.playground.flow")

# Exports held part-way until released, as in the local worker's end-to-end tests.
from tests.api.test_local_worker import held  # noqa: F401

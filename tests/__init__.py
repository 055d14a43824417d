"""The test suite: unit/ (fakes, no servers), integration/ (real PostgreSQL, gRPC), e2e/ (HTTP stack, browser)."""

from pathlib import Path

# The repository root, wherever a test module sits below tests/.
REPO_ROOT = Path(__file__).resolve().parent.parent

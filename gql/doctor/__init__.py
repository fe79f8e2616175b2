"""`export-gql doctor`: checks a deployment from its settings.

Each check is a small function of the settings returning an `Outcome`; the CLI
renders the results (`report`).
"""

from gql.doctor.checks import run_checks
from gql.doctor.outcome import CheckResult, Outcome, Status

__all__ = ["CheckResult", "Outcome", "Status", "run_checks"]

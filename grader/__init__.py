"""The grader: `python -m grader homework` or `python -m grader UTID.zip` (see grader/grader.py)."""

from .grader import BANDS, BundleError, CaseResult, grade, report, safe_extract

__all__ = ["BANDS", "BundleError", "CaseResult", "grade", "report", "safe_extract"]

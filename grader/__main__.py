"""Command line of the grader: `python -m grader homework [-v]` or `python -m grader UTID.zip`."""

import argparse
import sys

from homework.cli import ModelUnavailable
from homework.data import DataError

from .grader import CASE_TIMEOUT, N_QUESTIONS, BundleError, grade, report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    parser.add_argument("target", help="a folder holding homework/, the homework folder itself, or a bundle .zip")
    parser.add_argument("-v", "--verbose", action="store_true", help="show every integrity check and details")
    parser.add_argument("--questions", type=int, default=N_QUESTIONS, help="validation (and fresh) questions per model")
    parser.add_argument("--timeout", type=float, default=CASE_TIMEOUT, help="seconds allowed per case")
    parser.add_argument("--unsafe", action="store_true",
                        help="grade even where the sandbox cannot isolate (the bundle then runs with your rights)")
    args = parser.parse_args(argv)
    try:
        results = grade(args.target, args.questions, args.timeout, unsafe=args.unsafe)
    except (BundleError, DataError, ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report(results, args.verbose))
    return 0


if __name__ == "__main__":
    sys.exit(main())

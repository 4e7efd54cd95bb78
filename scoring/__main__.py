"""`python -m scoring`: Winnow's command line, the same program as `winnow` (`scoring.cli`).

`main` is re-exported for callers that import it from here (`from scoring.__main__ import
main`, the `winnow` entry point in pyproject.toml).
"""

from __future__ import annotations

import sys

from scoring.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

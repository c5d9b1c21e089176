"""`python -m packager` is the `pkg` command."""

from __future__ import annotations

from packager._cli import main

if __name__ == "__main__":
    main()

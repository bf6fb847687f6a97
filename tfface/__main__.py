"""`python -m tfface ...`: the same as the `tfface` command."""

from tfface.cli.main import main

raise SystemExit(main())

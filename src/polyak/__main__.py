"""`python -m polyak`: the command line (see polyak.cli)."""

from polyak.cli import main

raise SystemExit(main())

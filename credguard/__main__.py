"""``python -m credguard``."""

from credguard.cli import main

raise SystemExit(main())

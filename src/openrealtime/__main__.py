"""``python -m openrealtime`` is the CLI."""

from openrealtime.cli import main

raise SystemExit(main())

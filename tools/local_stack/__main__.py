"""`python -m local_stack run` (what `make run` calls); see local_stack.cli."""

from local_stack.cli import main

raise SystemExit(main())

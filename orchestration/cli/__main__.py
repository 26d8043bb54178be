"""`python -m orchestration.cli`: the same as the `reclake` console script."""

import sys

from orchestration.cli.entry import main

sys.exit(main())

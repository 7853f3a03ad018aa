"""`python -m facegan.cli`: the same as the `facegan` command."""

import sys

from facegan.cli import main

sys.exit(main())

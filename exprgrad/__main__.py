"""`python -m exprgrad` is the `exprgrad` command."""

import sys

from .cli import main

sys.exit(main())

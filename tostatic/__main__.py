"""`python -m tostatic`: the `tostatic` command."""
import sys

from tostatic.cli import main

sys.exit(main())

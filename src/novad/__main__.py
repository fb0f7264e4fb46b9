"""``python -m novad``."""

import sys

from novad.cli import main

sys.exit(main())

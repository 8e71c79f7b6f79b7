"""``python -m codebrain.cli``."""

import sys

from codebrain.cli import main

sys.exit(main())

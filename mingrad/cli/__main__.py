"""``python -m mingrad.cli``: the ``mingrad`` command."""

import sys

from . import main

sys.exit(main())

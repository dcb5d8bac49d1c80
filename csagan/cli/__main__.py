"""``python -m csagan.cli``: the ``csagan`` command (as ``python -m csagan``)."""

import sys

from csagan.cli import main

sys.exit(main())

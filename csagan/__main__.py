"""``python -m csagan ...`` is the ``csagan`` command (also for ``torchrun -m csagan train ...``)."""

import sys

from csagan.cli import main

if __name__ == "__main__":
    sys.exit(main())

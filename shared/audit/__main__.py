"""Entry point of ``python -m shared.audit`` (see ``cli``)."""

import sys

from shared.audit.cli import main

sys.exit(main())

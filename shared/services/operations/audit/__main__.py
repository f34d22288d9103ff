"""Entry point of ``python -m shared.services.operations.audit`` (see ``cli``)."""

import sys

from shared.services.operations.audit.cli import main

sys.exit(main())

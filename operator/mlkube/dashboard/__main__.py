"""``python -m mlkube.dashboard`` runs ``mlkube dashboard``."""

import sys

from mlkube.dashboard import command

sys.exit(command.main())

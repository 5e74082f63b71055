"""``python -m mlkube.plugin``: the same as the ``kubectl-mlkube`` console script."""

import sys

from mlkube.plugin import command

sys.exit(command.main())

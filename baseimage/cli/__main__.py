"""``python -m baseimage.cli``: the same as the ``baseimage`` command."""

import sys

from baseimage.cli.app import main

sys.exit(main())

"""``python -m baseimage.cli``: the same as the ``baseimage`` command."""

import sys

from baseimage import cli

sys.exit(cli.run())

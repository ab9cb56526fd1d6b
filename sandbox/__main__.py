"""python -m sandbox start|stop|status (see sandbox/cli.py)."""
import sys

from sandbox.cli import main

sys.exit(main())

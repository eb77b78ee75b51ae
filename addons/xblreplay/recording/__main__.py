"""The recorder child process (``python -m xblreplay.recording DIR``): see RecorderProcess."""

import sys

from . import _serve

_serve(*sys.argv[1:4])

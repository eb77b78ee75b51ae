"""The recorder child process (``python -m xblreplay.recording DIR``): see RecorderProcess."""

import sys

from .child import serve

serve(*sys.argv[1:4])

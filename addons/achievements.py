"""mitmproxy entry script: mitmdump -s addons/achievements.py [--set achievements_mode=...]

Works from a checkout without installing: the package beside this file is put on the path.
"""

import sys
from pathlib import Path

_here = str(Path(__file__).resolve().parent)
if _here not in sys.path:
    sys.path.insert(0, _here)

from xblreplay.mitm.addon import Achievements  # noqa: E402

addons = [Achievements()]

"""mitmproxy entry script inside the package (what ``xblreplay run`` gives ``mitmdump -s``), so that
an installed package needs no checkout. From a checkout, ``mitmdump -s addons/achievements.py`` is
the documented entry; both load the same addon.
"""

import os
import sys
from pathlib import Path

# mitmproxy puts the script's own directory (this package's) first on sys.path while it loads the
# script: take it off, so no module of the package can shadow a top-level one; and put the
# directory holding the package on it (already there when installed; a source tree otherwise).
_here = Path(__file__).resolve().parent  # mitm/
_package = _here.parent  # xblreplay/
sys.path[:] = [p for p in sys.path if not p or Path(os.path.abspath(p)) != _here]
if str(_package.parent) not in sys.path:
    sys.path.insert(0, str(_package.parent))

from xblreplay.mitm.addon import Achievements  # noqa: E402

addons = [Achievements()]

"""The mitmproxy glue: the only sub-package that imports mitmproxy. Hooks translate flows to the
core's plain data (:mod:`xblreplay.proxy`) and carry out what it decides."""

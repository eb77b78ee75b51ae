"""Reading files from outside: rules, fault profiles and cassettes (YAML and its JSON subset),
and checking them against their JSON Schemas.

Such a file may come from anyone who can open a pull request, so reading it is bounded
(README, "Limits on hostile input"); what is refused is a :class:`Refused` (:mod:`.refused`) with
a line (0: the file as a whole) and a reason, never a hang, a traceback or gigabytes of memory:

* :func:`read_regular` (:mod:`.regular`) reads regular files only: a FIFO, device, socket or
  directory is refused without being read (checked before opening, opened non-blocking, checked
  again on the open descriptor); with ``inside``, a symbolic link must lead to a file inside that
  directory; a file larger than ``bounds.MAX_FILE_BYTES`` is refused before it is read;
* :func:`load_yaml` (:mod:`.yamldoc`) builds a document no deeper than ``bounds.MAX_JSON_DEPTH``
  levels, whose aliases repeat at most ``bounds.MAX_YAML_ALIAS_EXPANSION`` nodes and characters,
  with no collection containing itself, no integer of more than ``bounds.MAX_INT_DIGITS`` digits
  and no NaN or infinity (the values are JSON's); :func:`read_yaml` reads a file that way;
* :func:`load_json` (:mod:`.jsondoc`) does the same for JSON text, at the speed of ``json.loads``;
* :func:`strict_validator` and :func:`first_error` (:mod:`.schema`) check a document against its
  schema, integers being ints, and say the most specific finding in one line.
"""

from .jsondoc import load_json
from .refused import TOO_DEEP, Refused
from .regular import not_regular, outside_reason, read_regular, within
from .schema import first_error, short_repr, strict_validator
from .yamldoc import SafeLoader, load_yaml, read_yaml

__all__ = [
    "TOO_DEEP", "Refused", "SafeLoader", "first_error", "load_json", "load_yaml", "not_regular",
    "outside_reason", "read_regular", "read_yaml", "short_repr", "strict_validator", "within",
]

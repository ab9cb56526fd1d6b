"""Unit tests import the collection's code as ansible_collections.hunter.ops.* (set up by scripts/setup.sh)."""
import os
import sys

_COLLECTIONS = os.path.join(os.path.dirname(__file__), "..", "..", ".ansible", "collections")
if os.path.abspath(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, os.path.abspath(_COLLECTIONS))

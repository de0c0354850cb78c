"""``python -m rtlab.data``: the same as ``python -m rtlab.data.build`` (rebuild the bundled clips)."""

import sys

from .build import main

sys.exit(main())

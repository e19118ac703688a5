"""`python -m gdcld_zoo` runs the `gdcld-zoo` command."""

import sys

from gdcld_zoo.cli import main

sys.exit(main())

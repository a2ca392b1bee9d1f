"""`python -m postergenre.cli <stage> ...`, as the `postergenre` command."""
import sys

from . import main

sys.exit(main())

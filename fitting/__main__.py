import sys

from fitting.cli import main

sys.exit(main())
